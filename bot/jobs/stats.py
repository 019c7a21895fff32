"""`stats`: carry the activity roll-up of the operators' figures on to the last closed
10-minute step (storage/stats/rollup.py), then vacuum its tables. Idempotent: a repeat, or a
second process at once, finds the roll-up already there and does nothing."""

from __future__ import annotations

from bot.jobs.env import JobEnv
from storage.stats import rollup


async def run(env: JobEnv) -> int:
    """Returns how many 10-minute steps the roll-up moved on (the first run takes all
    history); when it moved, its tables are vacuumed so the figures' index-only reads stay
    so (storage/stats/rollup.py: `tidy`)."""
    services = env.services
    async with services.db.transaction() as session:
        moved = await rollup.advance(session, services.clock.now())
    if moved:
        await rollup.tidy(services.db)
    return moved
