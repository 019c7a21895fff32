"""Daily check-ins: one row per member and local day, guarded by a unique constraint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring
from storage.models import Checkin, Member


@dataclass(frozen=True)
class CheckinResult:
    created: bool  # False: this day was already checked in
    streak: int
    points: int  # credited now, or on the earlier check-in of the day


_checkins: Table = Checkin.__table__  # type: ignore[assignment]
_INSERT = insert_ignoring(
    _checkins,
    ("member_id", "day", "streak", "points", "created_at"),
    ("member_id", "day"),
    "id",
)
_LAST = (
    select(_checkins.c.day, _checkins.c.streak, _checkins.c.points)
    .where(_checkins.c.member_id == bindparam("member_id"))
    .order_by(_checkins.c.day.desc())
    .limit(1)
)


@dataclass(frozen=True)
class Day:
    day: date
    streak: int
    points: int


_OF_DAY = select(_checkins.c.day, _checkins.c.streak, _checkins.c.points).where(
    _checkins.c.member_id == bindparam("member_id"), _checkins.c.day == bindparam("day")
)


async def of_day(session: AsyncSession, member_id: int, day: date) -> Day | None:
    row = (await session.execute(_OF_DAY, {"member_id": member_id, "day": day})).first()
    return Day(row.day, row.streak, row.points) if row is not None else None


async def last(session: AsyncSession, member_id: int) -> Day | None:
    row = (await session.execute(_LAST, {"member_id": member_id})).first()
    return Day(row.day, row.streak, row.points) if row is not None else None


async def record(
    session: AsyncSession,
    member_id: int,
    day: date,
    now: datetime,
    reward: Callable[[int], int],
) -> CheckinResult:
    """Insert today's check-in with its streak and reward, or report the one that exists.

    The row is inserted with ON CONFLICT DO NOTHING: of any number of concurrent check-ins
    for one day exactly one inserts, the rest see no row come back.
    """
    previous = await last(session, member_id)
    if previous is not None and previous.day == day:
        return CheckinResult(False, previous.streak, previous.points)
    streak = (
        previous.streak + 1 if previous is not None and previous.day == day - timedelta(1) else 1
    )
    points = reward(streak)
    values = {
        "member_id": member_id,
        "day": day,
        "streak": streak,
        "points": points,
        "created_at": now,
    }
    inserted = (await session.execute(_INSERT, values)).scalar_one_or_none()
    if inserted is None:
        winner = (
            await session.execute(
                select(Checkin).where(Checkin.member_id == member_id, Checkin.day == day)
            )
        ).scalar_one()
        return CheckinResult(False, winner.streak, winner.points)
    return CheckinResult(True, streak, points)


async def current_streak(session: AsyncSession, member_id: int, today: date) -> int:
    """The streak still alive today: the last check-in's, if it was today or yesterday."""
    previous = await last(session, member_id)
    if previous is None or previous.day < today - timedelta(1):
        return 0
    return previous.streak


async def recount_streaks(session: AsyncSession, member_id: int) -> None:
    """Recompute every row's streak from the days themselves (after two members merge)."""
    rows = (
        await session.execute(
            select(Checkin.id, Checkin.day, Checkin.streak)
            .where(Checkin.member_id == member_id)
            .order_by(Checkin.day)
        )
    ).all()
    streak, prev_day = 0, None
    for row_id, day, stored in rows:
        streak = streak + 1 if prev_day is not None and day == prev_day + timedelta(1) else 1
        prev_day = day
        if stored != streak:
            await session.execute(update(Checkin).where(Checkin.id == row_id).values(streak=streak))
    # A new version of the member's row, even when no streak changed: the check-in fast path
    # on PostgreSQL tells by the row's xmin that check-ins were written after its snapshot
    # (storage/checkin_fast.py). Every writer of check-in rows runs this or moves growth.
    await session.execute(update(Member).where(Member.id == member_id).values(tier=Member.tier))
