"""`expiry`: points past their date leave the balance (an `expire` ledger entry per lot)."""

from __future__ import annotations

from bot.jobs.env import JobEnv
from storage import ledger


async def run(env: JobEnv) -> int:
    """Expire every lot past its date; returns the points expired. The ledger's keys make a
    repeat (or two processes at once) expire nothing twice. Each member's entries carry the
    time of their own transaction, not the run's start: a long run would otherwise write
    into hours the stats roll-up has already closed."""
    services = env.services
    now = services.clock.now()
    total, seen = 0, set[int]()
    while True:
        async with services.db.reader() as session:
            due = [m for m in await ledger.members_with_due_lots(session, now) if m not in seen]
        if not due:
            return total
        for member_id in due:
            seen.add(member_id)
            async with services.db.transaction() as session:
                total += await ledger.expire_due(session, member_id, services.clock.now())
