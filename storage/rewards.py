"""The points mall's catalogue: rewards and the prizes of lottery rewards."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Reward, RewardPrize, Voucher

VOUCHER, LOTTERY = "voucher", "lottery"
FIELDS = ("kind", "names", "cost", "stock", "per_member_limit", "min_tier", "valid_days", "active")
PRIZE_FIELDS = ("names", "weight", "stock")
DEFAULT_VALID_DAYS = 30


async def by_slug(session: AsyncSession, slug: str) -> Reward | None:
    stmt = select(Reward).where(Reward.slug == slug.lower())
    return (await session.execute(stmt)).scalar_one_or_none()


async def listing(session: AsyncSession, *, active_only: bool = True) -> list[Reward]:
    stmt = select(Reward).order_by(Reward.cost, Reward.slug)
    if active_only:
        stmt = stmt.where(Reward.active.is_(True))
    return list((await session.execute(stmt)).scalars())


async def prizes_of(
    session: AsyncSession, reward_ids: Sequence[int]
) -> dict[int, list[RewardPrize]]:
    """Active prizes by reward, heaviest first (the order the odds are shown in)."""
    found: dict[int, list[RewardPrize]] = {rid: [] for rid in reward_ids}
    if not reward_ids:
        return found
    stmt = (
        select(RewardPrize)
        .where(RewardPrize.reward_id.in_(list(reward_ids)), RewardPrize.active.is_(True))
        .order_by(RewardPrize.weight.desc(), RewardPrize.id)
    )
    for prize in (await session.execute(stmt)).scalars():
        found[prize.reward_id].append(prize)
    return found


async def upsert(
    session: AsyncSession,
    slug: str,
    values: dict[str, Any],
    now: datetime,
    prizes: list[dict[str, Any]] | None = None,
) -> tuple[Reward, bool]:
    """Create the reward or change the given fields; `prizes` (by prize slug) replace the
    active set: the ones not named are retired, kept for the vouchers that name them."""
    found = await by_slug(session, slug)
    created = found is None
    if found is None:
        found = Reward(
            slug=slug.lower(),
            kind=VOUCHER,
            names={},
            redeemed=0,
            min_tier="bronze",
            valid_days=DEFAULT_VALID_DAYS,
            active=True,
            created_at=now,
        )
        session.add(found)
    for name in FIELDS:
        if name in values:
            setattr(found, name, values[name])
    await session.flush()
    if prizes is not None:
        await _replace_prizes(session, found.id, prizes)
    return found, created


async def _replace_prizes(
    session: AsyncSession, reward_id: int, prizes: list[dict[str, Any]]
) -> None:
    stmt = select(RewardPrize).where(RewardPrize.reward_id == reward_id)
    existing = {p.slug: p for p in (await session.execute(stmt)).scalars()}
    wanted = {p["slug"]: p for p in prizes}
    for prize_slug, old in existing.items():
        old.active = prize_slug in wanted
    for prize_slug, values in wanted.items():
        prize = existing.get(prize_slug) or RewardPrize(
            reward_id=reward_id, slug=prize_slug, won=0, active=True
        )
        session.add(prize)
        for name in PRIZE_FIELDS:
            if name in values:
                setattr(prize, name, values[name])
    await session.flush()


async def redeemed_by(session: AsyncSession, member_id: int) -> dict[int, int]:
    """How many vouchers (not cancelled) the member holds per reward, for per-member limits."""
    stmt = (
        select(Voucher.reward_id, func.count())
        .where(Voucher.member_id == member_id, Voucher.state != "cancelled")
        .group_by(Voucher.reward_id)
    )
    return {rid: int(n) for rid, n in (await session.execute(stmt)).all()}
