"""Gift vouchers (welcome, birthday): a reward's voucher given, not bought, once per key."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import ledger
from storage.db import rowcount
from storage.models import Member, Reward, Voucher
from storage.rewards import VOUCHER
from storage.vouchers import ISSUED, new_code


async def give(
    session: AsyncSession, member_id: int, slug: str, key: str, now: datetime
) -> tuple[Voucher, Reward] | None:
    """Issue the reward's voucher for nothing, taking one from stock; None when `key` was
    used before, or the reward is unknown, retired, a lottery or sold out."""
    await ledger.lock_member(session, member_id)
    if (await session.execute(select(Voucher.id).where(Voucher.redemption_key == key))).first():
        return None
    reward = (await session.execute(select(Reward).where(Reward.slug == slug))).scalar_one_or_none()
    if reward is None or not reward.active or reward.kind != VOUCHER:
        return None
    taken = await session.execute(
        update(Reward)
        .where(Reward.id == reward.id, (Reward.stock.is_(None)) | (Reward.stock > 0))
        .values(stock=Reward.stock - 1, redeemed=Reward.redeemed + 1)
    )
    if rowcount(taken) != 1:
        return None
    voucher = Voucher(
        code=new_code(),
        reward_id=reward.id,
        member_id=member_id,
        redemption_key=key,
        cost=0,
        state=ISSUED,
        issued_at=now,
        expires_at=now + timedelta(days=reward.valid_days),
    )
    session.add(voucher)
    await session.flush()
    return voucher, reward


async def joined_since(session: AsyncSession, since: datetime) -> list[tuple[int, str]]:
    """(id, tier) of members created since `since`, for the welcome gift."""
    stmt = (
        select(Member.id, Member.tier)
        .where(Member.created_at >= since, Member.merged_into_id.is_(None))
        .order_by(Member.id)
    )
    return [(mid, tier) for mid, tier in (await session.execute(stmt)).all()]


async def keys_given(session: AsyncSession, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    stmt = select(Voucher.redemption_key).where(Voucher.redemption_key.in_(keys))
    return set((await session.execute(stmt)).scalars())
