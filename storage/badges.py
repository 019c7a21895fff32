"""Badges, each earned once per member; and this month's check-in leaderboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring
from storage.models import Badge, Checkin, Member

_badges: Table = Badge.__table__  # type: ignore[assignment]
_INSERT = insert_ignoring(
    _badges, ("member_id", "badge", "earned_at"), ("member_id", "badge"), "id"
)


async def award(session: AsyncSession, member_id: int, badge: str, now: datetime) -> bool:
    """Give the badge unless the member has it; True when given now (tell them)."""
    params = {"member_id": member_id, "badge": badge, "earned_at": now}
    return (await session.execute(_INSERT, params)).scalar_one_or_none() is not None


async def of_member(session: AsyncSession, member_id: int) -> dict[str, datetime]:
    stmt = select(Badge.badge, Badge.earned_at).where(Badge.member_id == member_id)
    return {name: at for name, at in (await session.execute(stmt)).all()}


async def best_streak(session: AsyncSession, member_id: int) -> int:
    stmt = select(func.coalesce(func.max(Checkin.streak), 0)).where(Checkin.member_id == member_id)
    return int((await session.execute(stmt)).scalar_one())


async def merge(session: AsyncSession, survivor_id: int, loser_id: int) -> None:
    """The loser's badges become the survivor's; one held by both is kept once (earliest)."""
    held = await of_member(session, survivor_id)
    theirs = await of_member(session, loser_id)
    for name, at in theirs.items():
        if name in held and at < held[name]:
            await session.execute(
                update(Badge)
                .where(Badge.member_id == survivor_id, Badge.badge == name)
                .values(earned_at=at)
            )
    if held:
        await session.execute(
            delete(Badge).where(Badge.member_id == loser_id, Badge.badge.in_(list(held)))
        )
    await session.execute(
        update(Badge).where(Badge.member_id == loser_id).values(member_id=survivor_id)
    )


@dataclass(frozen=True)
class Place:
    rank: int  # ties share a rank: 1, 2, 2, 4
    member_id: int
    name: str | None
    days: int


async def month_board(session: AsyncSession, first: date, last: date) -> list[Place]:
    """Every member who checked in between the days (inclusive), most days first; ties by
    who got there first (the earlier last check-in), then by member number."""
    days = func.count(Checkin.id).label("days")
    latest = func.max(Checkin.created_at).label("latest")
    stmt = (
        select(Checkin.member_id, Member.display_name, days, latest)
        .join(Member, Member.id == Checkin.member_id)
        .where(Checkin.day >= first, Checkin.day <= last, Member.merged_into_id.is_(None))
        .group_by(Checkin.member_id, Member.display_name)
        .order_by(days.desc(), latest, Checkin.member_id)
    )
    places: list[Place] = []
    for index, (member_id, name, count, _latest) in enumerate((await session.execute(stmt)).all()):
        rank = places[-1].rank if places and places[-1].days == count else index + 1
        places.append(Place(rank, member_id, name, int(count)))
    return places
