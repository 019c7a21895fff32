"""Make-up check-ins: a missed day filled for points, so the streak runs on through it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import checkins
from storage.db import insert_ignoring
from storage.models import Checkin, LedgerEntry

KEY_PREFIX = "makeup:"
_checkins: Table = Checkin.__table__  # type: ignore[assignment]
_INSERT = insert_ignoring(
    _checkins, ("member_id", "day", "streak", "points", "created_at"), ("member_id", "day"), "id"
)


def ledger_key(member_id: int, day: date) -> str:
    return f"{KEY_PREFIX}{member_id}:{day.isoformat()}"


async def missed_day(
    session: AsyncSession, member_id: int, today: date, window: int, first: date
) -> date | None:
    """The latest day of the last `window` days (not today, not before `first`) without a
    check-in."""
    stmt = select(Checkin.day).where(
        Checkin.member_id == member_id,
        Checkin.day >= today - timedelta(days=window),
        Checkin.day < today,
    )
    done = set((await session.execute(stmt)).scalars())
    for back in range(1, window + 1):
        day = today - timedelta(days=back)
        if day < first:
            return None
        if day not in done:
            return day
    return None


async def made_up_since(session: AsyncSession, member_id: int, since: datetime) -> int:
    """Make-ups the member bought since `since` (the month's start): their ledger entries."""
    stmt = select(func.count()).where(
        LedgerEntry.member_id == member_id,
        LedgerEntry.idempotency_key.like(f"{KEY_PREFIX}%"),
        LedgerEntry.created_at >= since,
    )
    return int((await session.execute(stmt)).scalar_one())


async def fill(session: AsyncSession, member_id: int, day: date, today: date, now: datetime) -> int:
    """Record the day as checked in (no points: it was bought) and recount the streaks after
    it; returns the streak alive today. The caller holds the member lock."""
    values = {"member_id": member_id, "day": day, "streak": 1, "points": 0, "created_at": now}
    await session.execute(_INSERT, values)
    await checkins.recount_streaks(session, member_id)
    return await checkins.current_streak(session, member_id, today)
