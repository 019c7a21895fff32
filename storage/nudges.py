"""What the nudge jobs ask of the database: who is muted, whose points expire soon, whose
birthday it is, who has gone quiet, whose tier is due for its yearly review."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Table, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import ColumnElement, Exists

from storage.db import insert_ignoring, rowcount
from storage.models import Checkin, LedgerEntry, Member, Order, OutboxPush, TierReview

_reviews: Table = TierReview.__table__  # type: ignore[assignment]
_INSERT_REVIEW = insert_ignoring(
    _reviews,
    (
        "member_id",
        "period_start",
        "reviewed_at",
        "growth_at",
        "earned",
        "tier_before",
        "tier_after",
    ),
    ("member_id", "period_start"),
    "id",
)


async def mute(session: AsyncSession, member_id: int, now: datetime) -> bool:
    """Stop marketing pushes to the member; False when they were muted already."""
    stmt = (
        update(Member).where(Member.id == member_id, Member.muted_at.is_(None)).values(muted_at=now)
    )
    return rowcount(await session.execute(stmt)) == 1


async def unmute(session: AsyncSession, member_id: int) -> bool:
    """Resume marketing pushes; False when they were not muted."""
    stmt = (
        update(Member)
        .where(Member.id == member_id, Member.muted_at.is_not(None))
        .values(muted_at=None)
    )
    return rowcount(await session.execute(stmt)) == 1


async def muted_among(session: AsyncSession, member_ids: Collection[int]) -> set[int]:
    """Which of these members have muted marketing pushes."""
    if not member_ids:
        return set()
    stmt = select(Member.id).where(Member.id.in_(sorted(member_ids)), Member.muted_at.is_not(None))
    return set((await session.execute(stmt)).scalars())


def _pushed_since(kind: str, since: datetime) -> Exists:
    """The member was sent (or is being sent) a push of `kind` after `since`."""
    return exists().where(
        OutboxPush.member_id == Member.id, OutboxPush.kind == kind, OutboxPush.created_at > since
    )


@dataclass(frozen=True)
class Expiring:
    member_id: int
    points: int
    first_expiry: datetime


def _expiring_within(now: datetime, days: int) -> ColumnElement[bool]:
    return (
        (LedgerEntry.remaining > 0)
        & (LedgerEntry.expires_at > now)
        & (LedgerEntry.expires_at <= now + timedelta(days=days))
    )


async def expiring_of(
    session: AsyncSession, member_id: int, now: datetime, days: int
) -> tuple[int, datetime | None]:
    """The member's points expiring within `days`, and when the first of them go."""
    stmt = select(
        func.coalesce(func.sum(LedgerEntry.remaining), 0), func.min(LedgerEntry.expires_at)
    ).where(LedgerEntry.member_id == member_id, _expiring_within(now, days))
    points, first = (await session.execute(stmt)).one()
    return int(points), first


async def expiring_soon(
    session: AsyncSession, now: datetime, days: int, *, kind: str, gap: timedelta
) -> list[Expiring]:
    """Members with points expiring within `days`, not pushed a `kind` within `gap`."""
    window = _expiring_within(now, days)
    stmt = (
        select(
            LedgerEntry.member_id,
            func.sum(LedgerEntry.remaining),
            func.min(LedgerEntry.expires_at),
        )
        .join(Member, Member.id == LedgerEntry.member_id)
        .where(window, Member.merged_into_id.is_(None), ~_pushed_since(kind, now - gap))
        .group_by(LedgerEntry.member_id)
        .order_by(LedgerEntry.member_id)
    )
    rows = await session.execute(stmt)
    return [Expiring(int(mid), int(points), first) for mid, points, first in rows]


async def born_on(session: AsyncSession, days: Collection[str]) -> list[int]:
    """Members whose birthday ("MM-DD") is one of `days`."""
    stmt = (
        select(Member.id)
        .where(Member.birthday.in_(sorted(days)), Member.merged_into_id.is_(None))
        .order_by(Member.id)
    )
    return list((await session.execute(stmt)).scalars())


async def gone_quiet(
    session: AsyncSession, now: datetime, today: date, days: int, *, kind: str, every: timedelta
) -> list[int]:
    """Unmuted members with no check-in and no order in the last `days` (and members that
    long), not pushed a `kind` within `every`."""
    since = now - timedelta(days=days)
    checked_in = exists().where(
        Checkin.member_id == Member.id, Checkin.day > today - timedelta(days=days)
    )
    ordered = exists().where(Order.member_id == Member.id, Order.created_at > since)
    stmt = (
        select(Member.id)
        .where(
            Member.merged_into_id.is_(None),
            Member.muted_at.is_(None),
            Member.created_at <= since,
            ~checked_in,
            ~ordered,
            ~_pushed_since(kind, now - every),
        )
        .order_by(Member.id)
    )
    return list((await session.execute(stmt)).scalars())


@dataclass(frozen=True)
class ReviewBase:
    """Where a member's next tier review counts from: their last review, or joining."""

    member_id: int
    tier: str
    since: datetime
    growth_at: int


async def due_for_review(
    session: AsyncSession, now: datetime, period: timedelta, *, skip_tier: str
) -> list[ReviewBase]:
    """Members above `skip_tier` whose last review (or joining) is at least `period` ago."""
    last = (
        select(_reviews.c.member_id, func.max(_reviews.c.period_start).label("start"))
        .group_by(_reviews.c.member_id)
        .subquery()
    )
    stmt = (
        select(
            Member.id, Member.tier, Member.created_at, _reviews.c.reviewed_at, _reviews.c.growth_at
        )
        .outerjoin(last, last.c.member_id == Member.id)
        .outerjoin(
            _reviews,
            (_reviews.c.member_id == Member.id) & (_reviews.c.period_start == last.c.start),
        )
        .where(Member.merged_into_id.is_(None), Member.tier != skip_tier)
        .order_by(Member.id)
    )
    due = []
    for mid, tier, created_at, reviewed_at, growth_at in await session.execute(stmt):
        since = reviewed_at or created_at
        if since <= now - period:
            due.append(ReviewBase(int(mid), str(tier), since, int(growth_at or 0)))
    return due


async def record_review(
    session: AsyncSession,
    base: ReviewBase,
    now: datetime,
    growth: int,
    tier_after: str,
) -> bool:
    """Write the review of the period starting at `base.since`; False if it exists already."""
    values = {
        "member_id": base.member_id,
        "period_start": base.since,
        "reviewed_at": now,
        "growth_at": growth,
        "earned": max(growth - base.growth_at, 0),
        "tier_before": base.tier,
        "tier_after": tier_after,
    }
    return (await session.execute(_INSERT_REVIEW, values)).scalar_one_or_none() is not None
