"""`stats`: carry the activity roll-up of the operators' figures on to the last closed hour
(storage/stats/rollup.py). Idempotent: a repeat, or a second process at once, finds the
roll-up already there and does nothing."""

from __future__ import annotations

from bot.jobs.env import JobEnv
from storage.stats import rollup


async def run(env: JobEnv) -> int:
    """Returns how many hours the roll-up moved on (the first run takes all history)."""
    services = env.services
    async with services.db.transaction() as session:
        return await rollup.advance(session, services.clock.now())
