"""Members: how many, how many new and active, by tier, by app, and their use of benefits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Checkin,
    CommunityMember,
    Identity,
    LedgerEntry,
    Member,
    StatsMember,
)
from storage.stats import rollup
from storage.stats.window import Window, rate

_LIVE = Member.merged_into_id.is_(None)  # a linked-away account is not a member of its own


def _count_if(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


BENEFITS = ("checked_in", "redeemed", "in_community")  # the benefit-use figures, in order


@dataclass(frozen=True)
class Counted:
    """What one pass over the members gives: `counts` (total, new), `by_tier` (every tier
    of the rules, in order), `outstanding` (points held now)."""

    counts: dict[str, int]
    by_tier: dict[str, int]
    outstanding: int


async def counted(session: AsyncSession, window: Window, tiers: tuple[str, ...]) -> Counted:
    """One scan of the members grouped by tier (counts, tiers, balances)."""
    joined = and_(_LIVE, Member.created_at <= window.now)
    stmt = select(
        Member.tier,
        _count_if(_LIVE),
        _count_if(joined),
        _count_if(and_(joined, Member.created_at >= window.start)),
        func.coalesce(func.sum(Member.points), 0),
    ).group_by(Member.tier)
    live: dict[str, int] = {}
    total = new = outstanding = 0
    for tier, alive, members_now, joined_new, points in await session.execute(stmt):
        if int(alive):  # tiers held only by linked-away shells do not show
            live[tier] = int(alive)
        total, new = total + int(members_now), new + int(joined_new)
        outstanding += int(points)
    ordered = {tier: live.pop(tier, 0) for tier in tiers}
    by_tier = {**ordered, **live}  # tiers since removed from the rules still show
    return Counted({"total": total, "new": new}, by_tier, outstanding)


async def benefit(session: AsyncSession, window: Window, name: str) -> dict[str, int]:
    """Per tier, the members among the period's check-in members (`checked_in`), points
    spenders (`redeemed`) or community members (`in_community`), each read apart so the
    three can run on separate connections at once (storage/stats/__init__.py). From the
    per-member roll-up rows (`stats_members`) when they serve, else `direct_benefit`."""
    if name == "in_community":
        return await _in_community(session)
    reach = await rollup.reach_for(session, window)
    if reach is not None and await _rolled_serves(session, window, name):
        return await _rolled_benefit(session, window, name, reach)
    return await direct_benefit(session, window, name)


async def _in_community(session: AsyncSession) -> dict[str, int]:
    """Per tier, the members in a community now: the roll-up rows' community counts, which
    triggers on community_members keep current (a partial index of those in one)."""
    stmt = (
        select(StatsMember.tier, func.count())
        .where(StatsMember.communities > 0)
        .group_by(StatsMember.tier)
    )
    return {tier: int(n) for tier, n in await session.execute(stmt)}


async def direct_benefit(session: AsyncSession, window: Window, name: str) -> dict[str, int]:
    """The same figure from the check-ins, the ledger or the memberships alone: a semi-join
    with the members for their tier, which hashes the set once (a join of all three at once
    hashed each set in every parallel worker, four times slower on a million members)."""
    ids: Select[tuple[int]]
    if name == "checked_in":
        ids = select(Checkin.member_id).where(
            Checkin.day >= window.first_day, Checkin.day <= window.today
        )
    elif name == "redeemed":
        ids = select(LedgerEntry.member_id).where(
            LedgerEntry.kind == "spend",
            LedgerEntry.created_at >= window.start,
            LedgerEntry.created_at <= window.now,
        )
    else:
        ids = select(CommunityMember.member_id).where(CommunityMember.status == "joined")
    per_tier = select(Member.tier, func.count()).where(Member.id.in_(ids)).group_by(Member.tier)
    return {tier: int(n) for tier, n in await session.execute(per_tier)}


async def _rolled_serves(session: AsyncSession, window: Window, name: str) -> bool:
    """Whether the roll-up's last check-in days answer the period's check-in members: a last
    day after the period's last one (a check-in dated ahead of the clock) would hide an
    earlier one inside the period, so then the check-ins alone answer (one index probe)."""
    if name != "checked_in":
        return True  # a roll-up's spend is before `through`, within the period's end
    ahead = select(StatsMember.member_id).where(StatsMember.last_checkin_day > window.today)
    return (await session.execute(ahead.limit(1))).first() is None


async def _rolled_benefit(
    session: AsyncSession, window: Window, name: str, reach: datetime
) -> dict[str, int]:
    """Per tier, the members the roll-up counts (last check-in day, or last spend, in the
    period: an index range of `stats_members`, which carries the tier now), then those only
    the check-ins or spends since `through` add (10 to 70 minutes of index entries, each
    member's roll-up row looked up for the tier, members only for those without one)."""
    rolled: ColumnElement[bool]
    missing: ColumnElement[bool]
    live: Select[tuple[int]]
    if name == "checked_in":
        day = StatsMember.last_checkin_day
        rolled = and_(day >= window.first_day, day <= window.today)
        missing = or_(day.is_(None), day < window.first_day, day > window.today)
        live = select(Checkin.member_id).where(
            Checkin.created_at >= reach,
            Checkin.day >= window.first_day,
            Checkin.day <= window.today,
        )
    else:
        spent = StatsMember.last_spend_at
        rolled = spent >= window.start
        missing = or_(spent.is_(None), spent < window.start)
        live = select(LedgerEntry.member_id).where(
            LedgerEntry.created_at >= reach,
            LedgerEntry.created_at <= window.now,
            LedgerEntry.kind == "spend",
        )
    counted: dict[str, int] = {}
    by_rollup = select(StatsMember.tier, func.count()).where(rolled).group_by(StatsMember.tier)
    for tier, n in await session.execute(by_rollup):
        counted[tier] = int(n)
    acted = live.group_by(live.selected_columns[0]).subquery()
    tiers = (
        select(
            func.coalesce(
                StatsMember.tier,
                select(Member.tier).where(Member.id == acted.c.member_id).scalar_subquery(),
            ).label("tier")
        )
        .select_from(acted)
        .outerjoin(StatsMember, StatsMember.member_id == acted.c.member_id)
        .where(missing)
        .subquery()
    )
    added = select(tiers.c.tier, func.count()).group_by(tiers.c.tier)
    for tier, n in await session.execute(added):
        counted[tier] = counted.get(tier, 0) + int(n)
    return counted


def benefits(
    tiers: dict[str, int], figures: dict[str, dict[str, int]]
) -> dict[str, dict[str, Any]]:
    """Per tier: members, and how many of them checked in, spent points (redemptions) in the
    period, and are in a community now, each with its rate."""
    result: dict[str, dict[str, Any]] = {}
    for tier, size in tiers.items():
        row: dict[str, Any] = {"members": size}
        for name, per_tier in figures.items():
            row[name] = per_tier.get(tier, 0)
            row[f"{name}_rate"] = rate(row[name], size)
        result[tier] = row
    return result


async def by_channel(session: AsyncSession) -> dict[str, int]:
    """Members reachable in each app (a linked member counts in both)."""
    stmt = (
        select(Identity.channel, func.count(func.distinct(Identity.member_id)))
        .group_by(Identity.channel)
        .order_by(Identity.channel)
    )
    return {channel: int(n) for channel, n in await session.execute(stmt)}
