"""Who was active when: a member is active in a period when they earned or spent points in it
(check-ins, orders, invites, redemptions); operators' adjustments, reversals and expiry are not
the member's doing and do not count. Retention and churn compare such sets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LedgerEntry, Member
from storage.stats.window import Window, rate

ACTIVE_KINDS = ("earn", "spend")
COHORTS = (30, 90)  # retention of the members who were new this many days ago


def _acted(member_id: Any, start: datetime, end: datetime | None = None) -> ColumnElement[bool]:
    """EXISTS a member's own ledger entry in [start, end) (the (member, created) index)."""
    conds = [
        LedgerEntry.member_id == member_id,
        LedgerEntry.kind.in_(ACTIVE_KINDS),
        LedgerEntry.created_at >= start,
    ]
    if end is not None:
        conds.append(LedgerEntry.created_at < end)
    return exists().where(and_(*conds))


def active_ids(start: datetime, end: datetime) -> Select[tuple[int]]:
    """The distinct members active in [start, end)."""
    return (
        select(LedgerEntry.member_id)
        .where(
            LedgerEntry.created_at >= start,
            LedgerEntry.created_at < end,
            LedgerEntry.kind.in_(ACTIVE_KINDS),
        )
        .distinct()
    )


async def active_count(session: AsyncSession, start: datetime, end: datetime) -> int:
    sub = active_ids(start, end).subquery()
    return int((await session.execute(select(func.count()).select_from(sub))).scalar_one())


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


async def churn(session: AsyncSession, window: Window) -> dict[str, int]:
    """`churned`: active in the previous period, not in this one; `won_back`: active in this
    one after a previous period without activity, having joined before that period."""
    before = active_ids(window.previous_start, window.start).subquery()
    churned = (
        select(func.count())
        .select_from(before)
        .where(~_acted(before.c.member_id, window.start, window.now))
    )
    now_active = active_ids(window.start, window.now).subquery()
    won_back = (
        select(func.count())
        .select_from(now_active)
        .join(Member, Member.id == now_active.c.member_id)
        .where(
            Member.created_at < window.previous_start,
            ~_acted(now_active.c.member_id, window.previous_start, window.start),
        )
    )
    return {
        "churned": int((await session.execute(churned)).scalar_one()),
        "won_back": int((await session.execute(won_back)).scalar_one()),
    }
