"""Redeeming rewards and drawing lotteries for vouchers; the till's use and cancel.

A redemption is one transaction: lock the member, check the reward, take one from stock
with a conditional UPDATE (and one prize, for a lottery), spend the points through the
ledger (soonest-expiring lots first) and issue the voucher. A refusal anywhere rolls it all
back, so stock never goes below zero and a balance never does either, under any load.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import ledger
from storage.db import rowcount
from storage.models import Reward, RewardPrize, Voucher
from storage.rewards import LOTTERY

ISSUED, USED, EXPIRED, CANCELLED = "issued", "used", "expired", "cancelled"
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read out at a till
CODE_LENGTH = 10
REFUND = "refund"


class Refused(Exception):
    """Why a redemption did not happen: unknown, inactive, tier, limit, sold_out, empty."""

    def __init__(self, reason: str, reward: Reward | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reward = reward


class VoucherState(Exception):
    """The voucher is not `issued` (or has expired): the till may not use or cancel it."""

    def __init__(self, voucher: Voucher, state: str) -> None:
        super().__init__(state)
        self.code = voucher.code  # plain values: the rollback detaches the row
        self.state = state


@dataclass(frozen=True)
class Redemption:
    voucher: Voucher
    reward: Reward
    prize: RewardPrize | None
    balance: int
    applied: bool  # False: this confirmation had already been redeemed


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def state_at(voucher: Voucher, now: datetime) -> str:
    """The state as the till sees it: an issued voucher past its date is expired already,
    before the sweep has written so."""
    if voucher.state == ISSUED and voucher.expires_at <= now:
        return EXPIRED
    return voucher.state


def state_seen(now: datetime) -> ColumnElement[str]:
    """`state_at` in SQL, for lists: an issued voucher past its date reads expired."""
    return case(
        (and_(Voucher.state == ISSUED, Voucher.expires_at <= now), EXPIRED),
        else_=Voucher.state,
    )


async def redeem(
    session: AsyncSession,
    member_id: int,
    slug: str,
    key: str,
    now: datetime,
    *,
    tier_ok: Callable[[str, str], bool],
    rng: random.Random | None = None,
) -> Redemption:
    """Spend the reward's cost for one voucher (a lottery: for a prize drawn by weight).

    `key` names the member's confirmation: the same key again gives the same voucher.
    `tier_ok(held, needed)` says whether the member's tier reaches the reward's.
    Raises Refused, or ledger's InsufficientPoints (nothing is then changed)."""
    member = await ledger.lock_member(session, member_id)
    repeat = await _by_key(session, key)
    if repeat is not None:
        reward = await session.get(Reward, repeat.reward_id)
        prize = await session.get(RewardPrize, repeat.prize_id) if repeat.prize_id else None
        assert reward is not None
        return Redemption(repeat, reward, prize, member.points, applied=False)
    reward = (
        await session.execute(select(Reward).where(Reward.slug == slug.lower()))
    ).scalar_one_or_none()
    if reward is None:
        raise Refused("unknown")
    if not reward.active:
        raise Refused("inactive", reward)
    if not tier_ok(member.tier, reward.min_tier):
        raise Refused("tier", reward)
    if reward.per_member_limit is not None:
        held = await _held(session, member_id, reward.id)
        if held >= reward.per_member_limit:
            raise Refused("limit", reward)
    # The reward's row before the prize's, as a cancellation takes them: no deadlock.
    taken = await session.execute(
        update(Reward)
        .where(Reward.id == reward.id, (Reward.stock.is_(None)) | (Reward.stock > 0))
        .values(stock=Reward.stock - 1, redeemed=Reward.redeemed + 1)
    )
    if rowcount(taken) != 1:
        raise Refused("sold_out", reward)
    prize = None
    if reward.kind == LOTTERY:
        prize = await _draw(session, reward.id, rng or random.SystemRandom())
    moved = await ledger.spend(session, member_id, reward.cost, f"redeem {reward.slug}", key, now)
    valid_days = reward.valid_days
    voucher = Voucher(
        code=new_code(),
        reward_id=reward.id,
        prize_id=prize.id if prize else None,
        member_id=member_id,
        redemption_key=key,
        cost=reward.cost,
        state=ISSUED,
        issued_at=now,
        expires_at=now + timedelta(days=valid_days),
    )
    session.add(voucher)
    await session.flush()
    await session.refresh(reward)
    return Redemption(voucher, reward, prize, moved.balance, applied=True)


async def _draw(session: AsyncSession, reward_id: int, rng: random.Random) -> RewardPrize:
    """Pick a prize in stock by weight and take one of it; another draw may empty a prize
    between our read and our UPDATE, then we pick again among the rest."""
    tried: set[int] = set()
    while True:
        stmt = select(RewardPrize).where(
            RewardPrize.reward_id == reward_id,
            RewardPrize.active.is_(True),
            (RewardPrize.stock.is_(None)) | (RewardPrize.stock > 0),
        )
        pool = [p for p in (await session.execute(stmt.order_by(RewardPrize.id))).scalars()]
        pool = [p for p in pool if p.id not in tried]
        if not pool:
            raise Refused("empty")
        prize = rng.choices(pool, weights=[p.weight for p in pool])[0]
        taken = await session.execute(
            update(RewardPrize)
            .where(
                RewardPrize.id == prize.id,
                (RewardPrize.stock.is_(None)) | (RewardPrize.stock > 0),
            )
            .values(stock=RewardPrize.stock - 1, won=RewardPrize.won + 1)
        )
        if rowcount(taken) == 1:
            await session.refresh(prize)
            return prize
        tried.add(prize.id)


async def pool_left(session: AsyncSession, reward_id: int) -> bool:
    """Whether any prize of the lottery is still in stock (checked before asking to confirm)."""
    stmt = select(func.count()).where(
        RewardPrize.reward_id == reward_id,
        RewardPrize.active.is_(True),
        (RewardPrize.stock.is_(None)) | (RewardPrize.stock > 0),
    )
    return int((await session.execute(stmt)).scalar_one()) > 0


async def _held(session: AsyncSession, member_id: int, reward_id: int) -> int:
    stmt = select(func.count()).where(
        Voucher.member_id == member_id, Voucher.reward_id == reward_id, Voucher.state != CANCELLED
    )
    return int((await session.execute(stmt)).scalar_one())


async def _by_key(session: AsyncSession, key: str) -> Voucher | None:
    stmt = select(Voucher).where(Voucher.redemption_key == key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def by_code(session: AsyncSession, code: str) -> Voucher | None:
    stmt = select(Voucher).where(Voucher.code == code.strip().upper())
    return (await session.execute(stmt)).scalar_one_or_none()


async def of_member(session: AsyncSession, member_id: int, limit: int = 50) -> list[Voucher]:
    stmt = (
        select(Voucher)
        .where(Voucher.member_id == member_id)
        .order_by(Voucher.issued_at.desc(), Voucher.id.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def use(session: AsyncSession, code: str, now: datetime) -> Voucher | None:
    """Mark the voucher used, once: None if unknown, VoucherState if not usable now."""
    voucher = await by_code(session, code)
    if voucher is None:
        return None
    done = await session.execute(
        update(Voucher)
        .where(Voucher.id == voucher.id, Voucher.state == ISSUED, Voucher.expires_at > now)
        .values(state=USED, used_at=now)
    )
    await session.refresh(voucher)
    if rowcount(done) != 1:
        raise VoucherState(voucher, state_at(voucher, now))
    return voucher


async def cancel(
    session: AsyncSession, code: str, now: datetime, *, expiry_days: int
) -> Voucher | None:
    """Cancel an issued voucher: its points come back (a new lot) and its unit to stock."""
    voucher = await by_code(session, code)
    if voucher is None:
        return None
    member = await ledger.lock_member(session, voucher.member_id)
    done = await session.execute(
        update(Voucher)
        .where(Voucher.id == voucher.id, Voucher.state == ISSUED, Voucher.expires_at > now)
        .values(state=CANCELLED, cancelled_at=now)
    )
    await session.refresh(voucher)
    if rowcount(done) != 1:
        raise VoucherState(voucher, state_at(voucher, now))
    await session.execute(
        update(Reward)
        .where(Reward.id == voucher.reward_id)
        .values(stock=Reward.stock + 1, redeemed=Reward.redeemed - 1)
    )
    if voucher.prize_id is not None:
        await session.execute(
            update(RewardPrize)
            .where(RewardPrize.id == voucher.prize_id)
            .values(stock=RewardPrize.stock + 1, won=RewardPrize.won - 1)
        )
    if voucher.cost == 0:  # a gift: nothing was spent
        return voucher
    await ledger.earn(
        session,
        member.id,
        voucher.cost,
        f"voucher {voucher.code} cancelled",
        f"voucher-cancel:{voucher.code}",
        now,
        expiry_days=expiry_days,
        kind=REFUND,
    )
    return voucher


async def expire_due(session: AsyncSession, now: datetime) -> int:
    """Mark issued vouchers past their date expired (nothing comes back); returns how many."""
    done = await session.execute(
        update(Voucher)
        .where(Voucher.state == ISSUED, Voucher.expires_at <= now)
        .values(state=EXPIRED)
    )
    return rowcount(done)
