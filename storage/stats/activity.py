"""Who was active when: a member is active in a period when they earned or spent points in it
(check-ins, orders, invites, redemptions); operators' adjustments, reversals and expiry are not
the member's doing and do not count. Retention and churn compare such sets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LedgerEntry, Member
from storage.stats.window import Window, rate

ACTIVE_KINDS = ("earn", "spend")
COHORTS = (30, 90)  # retention of the members who were new this many days ago


def _acted(member_id: Any, since: datetime) -> ColumnElement[bool]:
    """EXISTS a member's own activity since `since` (the (member, created) index)."""
    return exists().where(
        LedgerEntry.member_id == member_id,
        LedgerEntry.kind.in_(ACTIVE_KINDS),
        LedgerEntry.created_at >= since,
    )


async def retention(session: AsyncSession, window: Window) -> dict[str, dict[str, Any]]:
    """For D in 30 and 90: the members who joined in the `days`-long stretch ending D days ago
    (`cohort`), and how many of them were active in the last min(days, D) days (`active`),
    i.e. after their first weeks, so joining itself does not count as staying."""
    found: dict[str, dict[str, Any]] = {}
    for ago in COHORTS:
        end = window.now - timedelta(days=ago)
        start = end - timedelta(days=window.days)
        since = window.now - timedelta(days=min(window.days, ago))
        stmt = select(
            func.count(),
            func.coalesce(func.sum(case((_acted(Member.id, since), 1), else_=0)), 0),
        ).where(
            Member.created_at >= start, Member.created_at < end, Member.merged_into_id.is_(None)
        )
        cohort, active = (await session.execute(stmt)).one()
        found[str(ago)] = {
            "joined_from": start.isoformat(),
            "joined_to": end.isoformat(),
            "cohort": int(cohort),
            "active": int(active),
            "rate": rate(int(active), int(cohort)),
        }
    return found


async def summary(session: AsyncSession, window: Window) -> dict[str, int]:
    """`active` in the period; `churned`: active in the period before, not in this one;
    `won_back`: active in this one after a period without, having joined before that period.
    One pass over both periods' entries, one row per member who acted in either."""
    now_ = case((LedgerEntry.created_at >= window.start, 1), else_=0)
    before_ = case((LedgerEntry.created_at < window.start, 1), else_=0)
    flags = (
        select(
            LedgerEntry.member_id,
            func.max(now_).label("now"),
            func.max(before_).label("before"),
        )
        .where(
            LedgerEntry.created_at >= window.previous_start,
            LedgerEntry.created_at <= window.now,
            LedgerEntry.kind.in_(ACTIVE_KINDS),
        )
        .group_by(LedgerEntry.member_id)
        .subquery()
    )
    joined_before = Member.created_at < window.previous_start
    stmt = (
        select(
            _count_if(flags.c.now == 1),
            _count_if(and_(flags.c.before == 1, flags.c.now == 0)),
            _count_if(and_(flags.c.now == 1, flags.c.before == 0, joined_before)),
        )
        .select_from(flags)
        .join(Member, Member.id == flags.c.member_id)
    )
    active, churned, won_back = (await session.execute(stmt)).one()
    return {"active": int(active), "churned": int(churned), "won_back": int(won_back)}


def _count_if(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)
