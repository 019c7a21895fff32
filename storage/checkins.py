"""Daily check-ins: one row per member and local day, guarded by a unique constraint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import upsert_insert
from storage.models import Checkin


@dataclass(frozen=True)
class CheckinResult:
    created: bool  # False: this day was already checked in
    streak: int
    points: int  # credited now, or on the earlier check-in of the day


async def last(session: AsyncSession, member_id: int) -> Checkin | None:
    stmt = (
        select(Checkin).where(Checkin.member_id == member_id).order_by(Checkin.day.desc()).limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


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
    inserted = (
        await session.execute(
            upsert_insert(session, Checkin)
            .values(member_id=member_id, day=day, streak=streak, points=points, created_at=now)
            .on_conflict_do_nothing(index_elements=["member_id", "day"])
            .returning(Checkin.id)
        )
    ).scalar_one_or_none()
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
