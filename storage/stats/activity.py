"""Who was active when: a member is active in a period when they earned or spent points in it
(check-ins, orders, invites, redemptions); operators' adjustments, reversals and expiry are not
the member's doing and do not count. Retention and churn compare such sets.

Each figure reads the activity roll-up (storage/stats/rollup.py) for the entries before its
`through` and the ledger after it, when the roll-up reaches the period's start; else (not
built yet, or the job stalled) the ledger alone. Both give the same numbers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Subquery, and_, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LedgerEntry, Member, StatsActivity, StatsComeback
from storage.stats import rollup
from storage.stats.rollup import ACTIVE_KINDS
from storage.stats.window import Window, rate

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
    return {str(ago): await cohort(session, window, ago) for ago in COHORTS}


async def cohort(session: AsyncSession, window: Window, ago: int) -> dict[str, Any]:
    """Retention of the members who were new `ago` days ago (one of `COHORTS`)."""
    reach = await rollup.reach_for(session, window)
    end = window.now - timedelta(days=ago)
    start = end - timedelta(days=window.days)
    since = window.now - timedelta(days=min(window.days, ago))
    if reach is not None:
        size, active = await _cohort_rolled_up(session, start, end, since, reach)
    else:
        size, active = await _cohort(session, start, end, since)
    return {
        "joined_from": start.isoformat(),
        "joined_to": end.isoformat(),
        "cohort": size,
        "active": active,
        "rate": rate(active, size),
    }


async def _cohort(
    session: AsyncSession, start: datetime, end: datetime, since: datetime
) -> tuple[int, int]:
    """The ledger alone: each cohort member's EXISTS over the (member, created) index."""
    stmt = select(
        func.count(),
        func.coalesce(func.sum(case((_acted(Member.id, since), 1), else_=0)), 0),
    ).where(Member.created_at >= start, Member.created_at < end, Member.merged_into_id.is_(None))
    cohort, active = (await session.execute(stmt)).one()
    return int(cohort), int(active)


def _live(since: datetime, until: datetime | None = None) -> Subquery:
    """Members with activity since `since` (up to `until`), each once with their first."""
    stmt = select(LedgerEntry.member_id, func.min(LedgerEntry.created_at).label("first")).where(
        LedgerEntry.created_at >= since, LedgerEntry.kind.in_(ACTIVE_KINDS)
    )
    if until is not None:
        stmt = stmt.where(LedgerEntry.created_at <= until)
    return stmt.group_by(LedgerEntry.member_id).subquery()


async def _cohort_rolled_up(
    session: AsyncSession, start: datetime, end: datetime, since: datetime, reach: datetime
) -> tuple[int, int]:
    """Roll-up rows of the cohort active since `since`, plus the cohort members active only
    after `reach` (the retention figure counts entries with no upper bound, so does this)."""
    cohort = select(func.count()).where(
        Member.created_at >= start, Member.created_at < end, Member.merged_into_id.is_(None)
    )
    rolled = select(func.count()).where(
        StatsActivity.joined_at >= start,
        StatsActivity.joined_at < end,
        StatsActivity.last_active_at >= since,
    )
    live = _live(max(since, reach))
    late = (
        select(func.count())
        .select_from(live)
        .join(Member, Member.id == live.c.member_id)
        .outerjoin(StatsActivity, StatsActivity.member_id == live.c.member_id)
        .where(
            Member.created_at >= start,
            Member.created_at < end,
            Member.merged_into_id.is_(None),
            or_(StatsActivity.last_active_at.is_(None), StatsActivity.last_active_at < since),
        )
    )
    size = (await session.execute(cohort)).scalar_one()
    active = (await session.execute(rolled)).scalar_one() + (
        await session.execute(late)
    ).scalar_one()
    return int(size), int(active)


async def summary(session: AsyncSession, window: Window) -> dict[str, int]:
    """`active` in the period; `churned`: active in the period before, not in this one;
    `won_back`: active in this one after a period without, having joined before that period.
    One pass over both periods' entries, one row per member who acted in either."""
    reach = await rollup.reach_for(session, window)
    if reach is not None:
        return await _summary_rolled_up(session, window, reach)
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


async def _summary_rolled_up(
    session: AsyncSession, window: Window, reach: datetime
) -> dict[str, int]:
    """The roll-up knows each member's last activity before `reach` (which is inside the
    period): active when it is in the period, churned when it is in the period before (and
    nothing since); won back by the one comeback row whose quiet spell spans the period
    before (a later activity of the period follows an active day of it, so one at most).
    The members who acted after `reach` (an hour or so of entries) correct the three."""
    last = StatsActivity.last_active_at
    in_before = and_(last >= window.previous_start, last < window.start)
    # Two ranges of the last-activity index (index-only), not one pass over every row.
    counted = select(func.count()).select_from(StatsActivity)
    active = (await session.execute(counted.where(last >= window.start))).scalar_one()
    churned = (await session.execute(counted.where(in_before))).scalar_one()
    quiet = or_(
        StatsComeback.quiet_since.is_(None), StatsComeback.quiet_since < window.previous_start
    )
    came_back = select(func.count()).where(
        StatsComeback.at >= window.start,
        StatsComeback.at < reach,
        quiet,
        StatsComeback.joined_at < window.previous_start,
    )
    won_back = (await session.execute(came_back)).scalar_one()
    live = _live(reach, window.now)
    quiet_before = or_(last.is_(None), last < window.previous_start)
    late = (
        select(
            _count_if(or_(last.is_(None), last < window.start)),
            _count_if(in_before),
            _count_if(and_(quiet_before, Member.created_at < window.previous_start)),
        )
        .select_from(live)
        .join(Member, Member.id == live.c.member_id)
        .outerjoin(StatsActivity, StatsActivity.member_id == live.c.member_id)
    )
    new_active, not_churned, new_won_back = (await session.execute(late)).one()
    return {
        "active": int(active) + int(new_active),
        "churned": int(churned) - int(not_churned),
        "won_back": int(won_back) + int(new_won_back),
    }


def _count_if(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)
