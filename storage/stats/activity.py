"""Who was active when: a member is active in a period when they earned or spent points in it
(check-ins, orders, invites, redemptions); operators' adjustments, reversals and expiry are not
the member's doing and do not count. Retention and churn compare such sets.

Each figure reads the activity roll-up (storage/stats/rollup.py) for the entries before its
`through` and the ledger after it, when the roll-up reaches the period's start; else (not
built yet, or the job stalled) the ledger alone. Both give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
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


def _stretch(window: Window, ago: int) -> tuple[datetime, datetime, datetime]:
    """The cohort new `ago` days ago: joined in [start, end); retained: active since `since`."""
    end = window.now - timedelta(days=ago)
    return (
        end - timedelta(days=window.days),
        end,
        window.now - timedelta(days=min(window.days, ago)),
    )


@dataclass(frozen=True)
class Late:
    """What the entries after the roll-up's `through` change: members newly `active` in the
    period, counted as `churned` by the roll-up but active since, newly `won_back`, and per
    cohort (`ago`) members newly retained."""

    active: int
    not_churned: int
    won_back: int
    retained: dict[int, int]


async def retention(session: AsyncSession, window: Window) -> dict[str, dict[str, Any]]:
    """For D in 30 and 90: the members who joined in the `days`-long stretch ending D days ago
    (`cohort`), and how many of them were active in the last min(days, D) days (`active`),
    i.e. after their first weeks, so joining itself does not count as staying."""
    extra = await late(session, window)
    return {
        str(ago): shape_cohort(window, ago, await cohort(session, window, ago), extra)
        for ago in COHORTS
    }


async def cohort(session: AsyncSession, window: Window, ago: int) -> tuple[int, int]:
    """The cohort new `ago` days ago: its size, and its members active since `since` by the
    roll-up (`late` adds those active only after `through`), or by the ledger alone when
    the roll-up does not serve this period."""
    start, end, since = _stretch(window, ago)
    if await rollup.reach_for(session, window) is None:
        return await _cohort(session, start, end, since)
    size = select(func.count()).where(
        Member.created_at >= start, Member.created_at < end, Member.merged_into_id.is_(None)
    )
    rolled = select(func.count()).where(
        StatsActivity.joined_at >= start,
        StatsActivity.joined_at < end,
        StatsActivity.last_active_at >= since,
    )
    return (
        int((await session.execute(size)).scalar_one()),
        int((await session.execute(rolled)).scalar_one()),
    )


def shape_cohort(
    window: Window, ago: int, counted: tuple[int, int], extra: Late | None
) -> dict[str, Any]:
    """A cohort's figures, with the late entries' members (`late`) when the roll-up served."""
    start, end, _ = _stretch(window, ago)
    size, active = counted
    if extra is not None:
        active += extra.retained[ago]
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


async def summary(session: AsyncSession, window: Window) -> dict[str, int]:
    """`active` in the period; `churned`: active in the period before, not in this one;
    `won_back`: active in this one after a period without, having joined before that period.
    With the roll-up: `rolled` plus `late`; else one pass over both periods' entries."""
    return add_late(await rolled(session, window), await late(session, window))


def add_late(counts: dict[str, int], extra: Late | None) -> dict[str, int]:
    """The roll-up's counts corrected by the members who acted after its `through`."""
    if extra is None:
        return counts
    return {
        "active": counts["active"] + extra.active,
        "churned": counts["churned"] - extra.not_churned,
        "won_back": counts["won_back"] + extra.won_back,
    }


async def rolled(session: AsyncSession, window: Window) -> dict[str, int]:
    """Active, churned, won back by the roll-up alone (`late` corrects them), or by the ledger
    alone when the roll-up does not serve this period.

    The roll-up knows each member's last activity before `reach` (which is inside the
    period): active when it is in the period, churned when it is in the period before (and
    nothing since); won back by the one comeback row whose quiet spell spans the period
    before (a later activity of the period follows an active day of it, so one at most)."""
    reach = await rollup.reach_for(session, window)
    if reach is None:
        return await _ledger_summary(session, window)
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
    return {"active": int(active), "churned": int(churned), "won_back": int(won_back)}


async def late(session: AsyncSession, window: Window) -> Late | None:
    """The members who acted after the roll-up's `through` (10 to 70 minutes of entries), in
    one statement for the activity counts and every cohort: one grouping of those entries
    and one look-up of each such member (three statements did the same work three times).
    None when the roll-up does not serve this period (the ledger alone answers)."""
    reach = await rollup.reach_for(session, window)
    if reach is None:
        return None
    created = LedgerEntry.created_at
    flags = [func.max(case((created <= window.now, 1), else_=0)).label("now")]
    for ago in COHORTS:  # retention counts entries with no upper bound
        since = max(_stretch(window, ago)[2], reach)
        flags.append(func.max(case((created >= since, 1), else_=0)).label(f"r{ago}"))
    live = (
        select(LedgerEntry.member_id, *flags)
        .where(created >= reach, LedgerEntry.kind.in_(ACTIVE_KINDS))
        .group_by(LedgerEntry.member_id)
        .subquery()
    )
    # A member with a roll-up row: its join time is theirs (it never changes) and they are
    # no linked-away shell (linking rebuilds the shell's rows, to none); members are looked
    # up only for those without a row (who never acted before `through`).
    act = StatsActivity
    last = act.last_active_at
    member = Member.id == live.c.member_id
    joined = func.coalesce(act.joined_at, select(Member.created_at).where(member).scalar_subquery())
    live_member = or_(
        act.member_id.is_not(None),
        select(Member.id).where(member, Member.merged_into_id.is_(None)).exists(),
    )
    now_ = live.c.now == 1
    quiet_before = or_(last.is_(None), last < window.previous_start)
    columns = [
        _count_if(and_(now_, or_(last.is_(None), last < window.start))),
        _count_if(and_(now_, last >= window.previous_start, last < window.start)),
        _count_if(and_(now_, quiet_before, joined < window.previous_start)),
    ]
    for ago in COHORTS:
        start, end, since = _stretch(window, ago)
        columns.append(
            _count_if(
                and_(
                    live.c[f"r{ago}"] == 1,
                    joined >= start,
                    joined < end,
                    live_member,
                    or_(last.is_(None), last < since),
                )
            )
        )
    stmt = select(*columns).select_from(live).outerjoin(act, act.member_id == live.c.member_id)
    active, not_churned, won_back, *retained = (await session.execute(stmt)).one()
    return Late(
        int(active),
        int(not_churned),
        int(won_back),
        {ago: int(n) for ago, n in zip(COHORTS, retained, strict=True)},
    )


async def _ledger_summary(session: AsyncSession, window: Window) -> dict[str, int]:
    """The ledger alone: one pass over both periods' entries, one row per member who acted
    in either."""
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
