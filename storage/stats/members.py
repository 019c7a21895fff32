"""Members: how many, how many new and active, by tier, by app, and their use of benefits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Checkin, CommunityMember, Identity, LedgerEntry, Member
from storage.stats.window import Window, rate

_LIVE = Member.merged_into_id.is_(None)  # a linked-away account is not a member of its own


async def counts(session: AsyncSession, window: Window) -> dict[str, int]:
    """`total` members now and `new` ones (joined in the period)."""
    stmt = select(
        func.count(),
        func.coalesce(func.sum(case((Member.created_at >= window.start, 1), else_=0)), 0),
    ).where(_LIVE, Member.created_at <= window.now)
    total, new = (await session.execute(stmt)).one()
    return {"total": int(total), "new": int(new)}


async def by_tier(session: AsyncSession, tiers: tuple[str, ...]) -> dict[str, int]:
    """Members per tier, every configured tier present (0 when empty), in the tiers' order."""
    stmt = select(Member.tier, func.count()).where(_LIVE).group_by(Member.tier)
    found = {tier: int(n) for tier, n in await session.execute(stmt)}
    ordered = {tier: found.pop(tier, 0) for tier in tiers}
    return {**ordered, **found}  # tiers since removed from the rules still show


async def by_channel(session: AsyncSession) -> dict[str, int]:
    """Members reachable in each app (a linked member counts in both)."""
    stmt = (
        select(Identity.channel, func.count(func.distinct(Identity.member_id)))
        .group_by(Identity.channel)
        .order_by(Identity.channel)
    )
    return {channel: int(n) for channel, n in await session.execute(stmt)}


async def benefit_use(
    session: AsyncSession, window: Window, tiers: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """Per tier: members, and how many of them checked in, spent points (redemptions) in the
    period, and are in a community now. Each a GROUP BY over the period's rows only."""
    checked = (
        select(Member.tier, func.count(func.distinct(Checkin.member_id)))
        .join(Member, Member.id == Checkin.member_id)
        .where(Checkin.day >= window.first_day, Checkin.day <= window.today)
        .group_by(Member.tier)
    )
    spent = (
        select(Member.tier, func.count(func.distinct(LedgerEntry.member_id)))
        .join(Member, Member.id == LedgerEntry.member_id)
        .where(
            LedgerEntry.kind == "spend",
            LedgerEntry.created_at >= window.start,
            LedgerEntry.created_at <= window.now,
        )
        .group_by(Member.tier)
    )
    grouped = (
        select(Member.tier, func.count(func.distinct(CommunityMember.member_id)))
        .join(Member, Member.id == CommunityMember.member_id)
        .where(CommunityMember.status == "joined")
        .group_by(Member.tier)
    )
    figures = {}
    for name, stmt in (("checked_in", checked), ("redeemed", spent), ("in_community", grouped)):
        figures[name] = {tier: int(n) for tier, n in await session.execute(stmt)}
    result: dict[str, dict[str, Any]] = {}
    for tier, size in tiers.items():
        row: dict[str, Any] = {"members": size}
        for name, per_tier in figures.items():
            row[name] = per_tier.get(tier, 0)
            row[f"{name}_rate"] = rate(row[name], size)
        result[tier] = row
    return result
