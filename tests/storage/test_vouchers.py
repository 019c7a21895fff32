"""The points mall in storage, on both backends: redemptions take stock and points in one
transaction, never more than stock nor below zero under load; cancel gives both back;
lottery draws respect prize stock and weights."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from storage import ledger, rewards, vouchers
from storage.errors import InsufficientPoints
from storage.models import Reward, RewardPrize, Voucher
from tests.conftest import START
from tests.storage.support import entries, points, remaining_by_key


def anyone(_held: str, _needed: str) -> bool:
    return True


async def make_reward(
    db, slug="mug", *, cost=100, stock=None, limit=None, kind="voucher", prizes=None, valid_days=30
):
    async with db.transaction() as session:
        values = {
            "names": {"en": slug.title()},
            "cost": cost,
            "stock": stock,
            "per_member_limit": limit,
            "kind": kind,
            "valid_days": valid_days,
        }
        await rewards.upsert(session, slug, values, START, prizes)


async def give(db, mid, amount, key, *, days=365, now=START):
    async with db.transaction() as session:
        await ledger.earn(session, mid, amount, "test", f"{mid}:{key}", now, expiry_days=days)


async def redeem(db, mid, slug, key, *, now=START, rng=None):
    async with db.transaction() as session:
        return await vouchers.redeem(session, mid, slug, key, now, tier_ok=anyone, rng=rng)


async def try_redeem(db, mid, slug, key, **kw):
    try:
        return await redeem(db, mid, slug, key, **kw)
    except (InsufficientPoints, vouchers.Refused) as exc:
        return exc


async def reward_row(db, slug="mug"):
    async with db.sessions() as session:
        return await rewards.by_slug(session, slug)


async def all_vouchers(db):
    async with db.sessions() as session:
        return list((await session.execute(select(Voucher).order_by(Voucher.id))).scalars())


async def check_ledger(db, mid):
    balance = await points(db, mid)
    async with db.sessions() as session:
        assert await ledger.ledger_sum(session, mid) == balance


async def test_redeem_spends_soonest_expiring_lots_and_issues_a_voucher(db, new_member):
    mid = await new_member()
    await give(db, mid, 80, "late", days=300)
    await give(db, mid, 50, "soon", days=20)
    await make_reward(db, stock=3)

    done = await redeem(db, mid, "mug", "redeem:1")

    assert done.applied and done.balance == 30
    assert await remaining_by_key(db, mid) == {f"{mid}:late": 30, f"{mid}:soon": 0}
    assert [(e.kind, e.amount) for e in await entries(db, mid)][-1] == ("spend", -100)
    reward = await reward_row(db)
    assert (reward.stock, reward.redeemed) == (2, 1)
    assert done.voucher.state == "issued"
    assert done.voucher.expires_at == START + timedelta(days=30)
    assert len(done.voucher.code) == 10
    await check_ledger(db, mid)


async def test_same_confirmation_twice_gives_the_same_voucher_once(db, new_member):
    mid = await new_member()
    await give(db, mid, 500, "a")
    await make_reward(db, stock=5)
    first = await redeem(db, mid, "mug", "redeem:1")
    again = await redeem(db, mid, "mug", "redeem:1")
    assert (again.applied, again.voucher.code) == (False, first.voucher.code)
    assert await points(db, mid) == 400
    assert (await reward_row(db)).stock == 4


async def test_refusals_change_nothing(db, new_member):
    mid = await new_member()
    await give(db, mid, 150, "a")
    await make_reward(db, "mug", stock=0)
    await make_reward(db, "pen", cost=200)
    await make_reward(db, "cap", cost=50, limit=1)
    await redeem(db, mid, "cap", "k0")

    sold_out = await try_redeem(db, mid, "mug", "k1")
    poor = await try_redeem(db, mid, "pen", "k2")
    limit = await try_redeem(db, mid, "cap", "k3")
    unknown = await try_redeem(db, mid, "nope", "k4")
    async with db.transaction() as session:
        refused_tier = None
        try:
            await vouchers.redeem(session, mid, "pen", "k5", START, tier_ok=lambda *_: False)
        except vouchers.Refused as exc:
            refused_tier = exc.reason

    assert sold_out.reason == "sold_out"
    assert (poor.balance, poor.wanted) == (100, 200)
    assert limit.reason == "limit"
    assert unknown.reason == "unknown"
    assert refused_tier == "tier"
    assert await points(db, mid) == 100
    assert (await reward_row(db, "pen")).redeemed == 0
    assert len(await all_vouchers(db)) == 1


async def test_inactive_reward_is_refused(db, new_member):
    mid = await new_member()
    await give(db, mid, 150, "a")
    await make_reward(db)
    async with db.transaction() as session:
        await rewards.upsert(session, "mug", {"active": False}, START)
    assert (await try_redeem(db, mid, "mug", "k")).reason == "inactive"


async def test_fifty_members_race_for_the_last_five_units(db, new_member):
    mids = [await new_member() for _ in range(50)]
    for mid in mids:
        await give(db, mid, 100, "a")
    await make_reward(db, stock=5)

    results = await asyncio.gather(*(try_redeem(db, m, "mug", f"r:{m}") for m in mids))

    won = [r for r in results if isinstance(r, vouchers.Redemption)]
    assert len(won) == 5
    assert all(
        isinstance(r, vouchers.Refused) and r.reason == "sold_out" for r in results if r not in won
    )
    reward = await reward_row(db)
    assert (reward.stock, reward.redeemed) == (0, 5)
    assert len(await all_vouchers(db)) == 5
    assert sorted([await points(db, m) for m in mids]) == [0] * 5 + [100] * 45
    for mid in mids:
        await check_ledger(db, mid)


async def test_one_member_confirming_ten_times_at_once_gets_one_voucher(db, new_member):
    mid = await new_member()
    await give(db, mid, 150, "a")
    await make_reward(db)

    results = await asyncio.gather(*(try_redeem(db, mid, "mug", f"r:{i}") for i in range(10)))

    assert sum(isinstance(r, vouchers.Redemption) for r in results) == 1
    assert sum(isinstance(r, InsufficientPoints) for r in results) == 9
    assert await points(db, mid) == 50
    assert len(await all_vouchers(db)) == 1
    assert (await reward_row(db)).redeemed == 1
    await check_ledger(db, mid)


async def test_use_once_then_409_state(db, new_member):
    mid = await new_member()
    await give(db, mid, 100, "a")
    await make_reward(db)
    code = (await redeem(db, mid, "mug", "k")).voucher.code
    async with db.transaction() as session:
        used = await vouchers.use(session, code.lower(), START)
    assert used.state == "used"
    with pytest.raises(vouchers.VoucherState) as again:
        async with db.transaction() as session:
            await vouchers.use(session, code, START)
    assert again.value.state == "used"
    async with db.transaction() as session:
        assert await vouchers.use(session, "NOSUCHCODE", START) is None


async def test_concurrent_uses_of_one_voucher_succeed_once(db, new_member):
    mid = await new_member()
    await give(db, mid, 100, "a")
    await make_reward(db)
    code = (await redeem(db, mid, "mug", "k")).voucher.code

    async def use():
        try:
            async with db.transaction() as session:
                return await vouchers.use(session, code, START)
        except vouchers.VoucherState as exc:
            return exc.state

    results = await asyncio.gather(*(use() for _ in range(8)))
    assert results.count("used") == 7


async def test_cancel_gives_points_and_unit_back_once(db, new_member):
    mid = await new_member()
    await give(db, mid, 120, "a")
    await make_reward(db, stock=1)
    code = (await redeem(db, mid, "mug", "k")).voucher.code

    async def cancel():
        try:
            async with db.transaction() as session:
                return await vouchers.cancel(session, code, START, expiry_days=365)
        except vouchers.VoucherState as exc:
            return exc.state

    results = await asyncio.gather(*(cancel() for _ in range(5)))

    assert results.count("cancelled") == 4
    assert await points(db, mid) == 120
    assert [(e.kind, e.amount) for e in await entries(db, mid)] == [
        ("earn", 120),
        ("spend", -100),
        ("refund", 100),
    ]
    reward = await reward_row(db)
    assert (reward.stock, reward.redeemed) == (1, 0)
    await check_ledger(db, mid)


async def test_expired_voucher_is_refused_and_swept(db, new_member):
    mid = await new_member()
    await give(db, mid, 100, "a")
    await make_reward(db, valid_days=7)
    code = (await redeem(db, mid, "mug", "k")).voucher.code
    later = START + timedelta(days=7)
    with pytest.raises(vouchers.VoucherState) as refused:
        async with db.transaction() as session:
            await vouchers.cancel(session, code, later, expiry_days=365)
    assert refused.value.state == "expired"
    async with db.transaction() as session:
        assert await vouchers.expire_due(session, later - timedelta(seconds=1)) == 0
        assert await vouchers.expire_due(session, later) == 1
        assert await vouchers.expire_due(session, later) == 0
    [voucher] = await all_vouchers(db)
    assert voucher.state == "expired"
    assert await points(db, mid) == 0


PRIZES = [
    {"slug": "grand", "names": {"en": "Grand"}, "weight": 1, "stock": 3},
    {"slug": "mug", "names": {"en": "Mug"}, "weight": 3, "stock": 20},
    {"slug": "sticker", "names": {"en": "Sticker"}, "weight": 6, "stock": None},
]


async def prize_rows(db):
    async with db.sessions() as session:
        rows = await session.execute(select(RewardPrize).order_by(RewardPrize.id))
        return {p.slug: p for p in rows.scalars()}


async def test_hundred_concurrent_draws_never_take_prize_stock_below_zero(db, new_member):
    prizes = [
        {"slug": "a", "names": {"en": "A"}, "weight": 5, "stock": 7},
        {"slug": "b", "names": {"en": "B"}, "weight": 1, "stock": 13},
    ]
    await make_reward(db, "luck", cost=10, kind="lottery", prizes=prizes)
    mids = [await new_member() for _ in range(100)]
    for mid in mids:
        await give(db, mid, 10, "a")

    results = await asyncio.gather(*(try_redeem(db, m, "luck", f"d:{m}") for m in mids))

    won = [r for r in results if isinstance(r, vouchers.Redemption)]
    assert len(won) == 20
    assert all(r.reason == "empty" for r in results if isinstance(r, vouchers.Refused))
    rows = await prize_rows(db)
    assert {s: (p.stock, p.won) for s, p in rows.items()} == {"a": (0, 7), "b": (0, 13)}
    assert Counter(r.prize.slug for r in won) == {"a": 7, "b": 13}
    assert sorted([await points(db, m) for m in mids]) == [0] * 20 + [10] * 80


async def test_empty_pool_is_refused_before_spending(db, new_member):
    mid = await new_member()
    await give(db, mid, 50, "a")
    await make_reward(
        db,
        "luck",
        cost=10,
        kind="lottery",
        prizes=[{"slug": "a", "names": {"en": "A"}, "weight": 1, "stock": 0}],
    )
    refused = await try_redeem(db, mid, "luck", "d1")
    assert refused.reason == "empty"
    assert await points(db, mid) == 50
    assert [e.kind for e in await entries(db, mid)] == ["earn"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_draws_follow_the_weights_with_a_fixed_seed(db, new_member):
    """2,000 draws with weights 1:3:6 (no stock limit): each share within 3 points of its
    weight's (about 4.5 standard deviations for the 10 % prize)."""
    prizes = [dict(p, stock=None) for p in PRIZES]
    await make_reward(db, "luck", cost=1, kind="lottery", prizes=prizes)
    mid = await new_member()
    await give(db, mid, 2000, "a")
    rng = random.Random(20261124)
    drawn: Counter[str] = Counter()
    async with db.transaction() as session:
        for i in range(2000):
            done = await vouchers.redeem(
                session, mid, "luck", f"d:{i}", START, tier_ok=anyone, rng=rng
            )
            drawn[done.prize.slug] += 1
    shares = {slug: n / 2000 for slug, n in drawn.items()}
    assert abs(shares["grand"] - 0.1) < 0.03
    assert abs(shares["mug"] - 0.3) < 0.03
    assert abs(shares["sticker"] - 0.6) < 0.03
    assert await points(db, mid) == 0


async def test_cancelled_draw_gives_points_and_prize_back(db, new_member):
    mid = await new_member()
    await give(db, mid, 10, "a")
    await make_reward(
        db,
        "luck",
        cost=10,
        kind="lottery",
        prizes=[{"slug": "a", "names": {"en": "A"}, "weight": 1, "stock": 1}],
    )
    code = (await redeem(db, mid, "luck", "d1")).voucher.code
    async with db.transaction() as session:
        await vouchers.cancel(session, code, START, expiry_days=365)
    rows = await prize_rows(db)
    assert (rows["a"].stock, rows["a"].won) == (1, 0)
    assert await points(db, mid) == 10
    async with db.sessions() as session:
        reward = (await session.execute(select(Reward))).scalar_one()
    assert reward.redeemed == 0
