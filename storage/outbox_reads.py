"""Reading the outbox for operators and metrics: how deep it is, how late, what is in it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxPush
from storage.outbox import PENDING, PUBLIC_STATE, _outbox


async def depth(session: AsyncSession) -> dict[tuple[str, str], int]:
    """How many pushes there are by (state, channel)."""
    stmt = select(_outbox.c.state, _outbox.c.channel, func.count()).group_by(
        _outbox.c.state, _outbox.c.channel
    )
    return {(state, channel): int(n) for state, channel, n in await session.execute(stmt)}


async def oldest_due(session: AsyncSession, now: datetime) -> datetime | None:
    """When the longest-waiting due push became due (quiet hours, backoff and WeChat holds
    are waiting by design and do not count); None when nothing is overdue."""
    stmt = select(func.min(_outbox.c.next_attempt_at)).where(
        _outbox.c.state == PENDING, _outbox.c.next_attempt_at <= now
    )
    found: datetime | None = (await session.execute(stmt)).scalar_one()
    return found


async def listing(
    session: AsyncSession, state: str | None = None, *, limit: int = 100, before: int | None = None
) -> list[OutboxPush]:
    """Pushes newest first; `state` is one of the public three (pending includes held)."""
    stmt = select(OutboxPush).order_by(OutboxPush.id.desc()).limit(limit)
    if state is not None:
        stmt = stmt.where(OutboxPush.state.in_([s for s, p in PUBLIC_STATE.items() if p == state]))
    if before is not None:
        stmt = stmt.where(OutboxPush.id < before)
    return list((await session.execute(stmt)).scalars())
