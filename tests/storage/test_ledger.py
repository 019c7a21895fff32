"""The points ledger on both backends: exact balances, lots, FIFO, expiry and idempotency."""

from __future__ import annotations

import asyncio
from datetime import UTC, timedelta

import pytest

from storage import ledger
from storage.errors import InsufficientPoints
from storage.ledger import Movement
from tests.conftest import START
from tests.storage.support import entries, points, remaining_by_key

YEAR = 365


async def earn(db, member_id, amount, key, now, *, days=YEAR):
    async with db.transaction() as session:
        return await ledger.earn(session, member_id, amount, "test", key, now, expiry_days=days)


async def spend(db, member_id, amount, key, now):
    async with db.transaction() as session:
        return await ledger.spend(session, member_id, amount, "test", key, now)


async def expire(db, member_id, now):
    async with db.transaction() as session:
        return await ledger.expire_due(session, member_id, now)


# --- earn ---------------------------------------------------------------------------------


async def test_earn_opens_a_lot_expiring_exactly_365_days_later(db, new_member):
    mid = await new_member()
    moved = await earn(db, mid, 120, "e1", START)
    assert moved == Movement(applied=True, amount=120, balance=120)
    [entry] = await entries(db, mid)
    assert (entry.kind, entry.amount, entry.key, entry.remaining) == ("earn", 120, "e1", 120)
    assert entry.created_at == START.astimezone(UTC)
    assert entry.expires_at == START.astimezone(UTC) + timedelta(days=365)
    assert entry.expires_at.tzinfo is not None
    assert await points(db, mid) == 120


async def test_earned_lot_survives_until_the_365th_day_and_expires_on_it(db, new_member):
    mid = await new_member()
    await earn(db, mid, 80, "e1", START)
    assert await expire(db, mid, START + timedelta(days=365, microseconds=-1)) == 0
    assert await points(db, mid) == 80
    assert await expire(db, mid, START + timedelta(days=365)) == 80
    assert await points(db, mid) == 0


async def test_earn_with_the_same_key_twice_applies_once(db, new_member):
    mid = await new_member()
    assert await earn(db, mid, 50, "order:1", START) == Movement(True, 50, 50)
    assert await earn(db, mid, 50, "order:1", START) == Movement(False, 0, 50)
    assert await earn(db, mid, 70, "order:1", START + timedelta(days=1)) == Movement(False, 0, 50)
    assert [(e.kind, e.amount) for e in await entries(db, mid)] == [("earn", 50)]
    assert await points(db, mid) == 50


@pytest.mark.parametrize("amount", [0, -5])
async def test_earn_refuses_a_non_positive_amount(db, new_member, amount):
    mid = await new_member()
    with pytest.raises(ValueError):
        await earn(db, mid, amount, "bad", START)
    assert await entries(db, mid) == []


# --- spend --------------------------------------------------------------------------------


async def test_spend_debits_and_writes_one_negative_entry(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "e1", START)
    moved = await spend(db, mid, 30, "s1", START + timedelta(hours=1))
    assert moved == Movement(True, -30, 70)
    assert [(e.kind, e.amount, e.key, e.remaining) for e in await entries(db, mid)] == [
        ("earn", 100, "e1", 70),
        ("spend", -30, "s1", 0),
    ]
    assert await points(db, mid) == 70


async def test_spend_takes_soonest_expiring_lot_first(db, new_member):
    mid = await new_member()
    # Earned in this order, but expiring in another: late, soonest, middle.
    await earn(db, mid, 100, "late", START, days=300)
    await earn(db, mid, 100, "soonest", START, days=100)
    await earn(db, mid, 100, "middle", START, days=200)
    await spend(db, mid, 150, "s1", START)
    assert await remaining_by_key(db, mid) == {"late": 100, "soonest": 0, "middle": 50}
    await spend(db, mid, 60, "s2", START)
    assert await remaining_by_key(db, mid) == {"late": 90, "soonest": 0, "middle": 0}
    assert await points(db, mid) == 90


async def test_spend_takes_the_older_of_two_lots_expiring_together(db, new_member):
    mid = await new_member()
    await earn(db, mid, 40, "first", START)
    await earn(db, mid, 40, "second", START)
    await spend(db, mid, 50, "s1", START)
    assert await remaining_by_key(db, mid) == {"first": 0, "second": 30}


async def test_spend_below_zero_raises_and_writes_nothing(db, new_member):
    mid = await new_member()
    await earn(db, mid, 50, "e1", START)
    before = await entries(db, mid)
    async with db.transaction() as session:  # the refusal itself must not have written anything
        with pytest.raises(InsufficientPoints) as refused:
            await ledger.spend(session, mid, 51, "test", "s1", START)
    assert (refused.value.balance, refused.value.wanted) == (50, 51)
    assert await entries(db, mid) == before
    assert await points(db, mid) == 50
    # The key was not burnt: the same request succeeds once the balance allows it.
    await earn(db, mid, 1, "e2", START)
    assert await spend(db, mid, 51, "s1", START) == Movement(True, -51, 0)


async def test_spend_with_the_same_key_twice_applies_once(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "e1", START)
    assert await spend(db, mid, 40, "redeem:1", START) == Movement(True, -40, 60)
    assert await spend(db, mid, 40, "redeem:1", START) == Movement(False, 0, 60)
    assert [e.kind for e in await entries(db, mid)] == ["earn", "spend"]
    assert await remaining_by_key(db, mid) == {"e1": 60}


async def test_spend_does_not_count_points_past_their_expiry(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "short", START, days=10)
    await earn(db, mid, 100, "long", START)
    later = START + timedelta(days=11)
    with pytest.raises(InsufficientPoints) as refused:
        await spend(db, mid, 150, "s1", later)
    assert refused.value.balance == 100
    assert await points(db, mid) == 200  # rolled back with the refusal: nothing written
    assert await spend(db, mid, 80, "s2", later) == Movement(True, -80, 20)
    short_id = next(e.id for e in await entries(db, mid) if e.key == "short")
    assert [(e.kind, e.amount, e.key) for e in await entries(db, mid)] == [
        ("earn", 100, "short"),
        ("earn", 100, "long"),
        ("expire", -100, f"expire:{short_id}"),
        ("spend", -80, "s2"),
    ]
    assert await remaining_by_key(db, mid) == {"short": 0, "long": 20}


@pytest.mark.parametrize("amount", [0, -1])
async def test_spend_refuses_a_non_positive_amount(db, new_member, amount):
    mid = await new_member()
    await earn(db, mid, 10, "e1", START)
    with pytest.raises(ValueError):
        await spend(db, mid, amount, "s1", START)
    assert await points(db, mid) == 10


# --- adjust -------------------------------------------------------------------------------


async def test_positive_adjustment_opens_an_adjust_lot(db, new_member):
    mid = await new_member()
    async with db.transaction() as session:
        moved = await ledger.adjust(session, mid, 25, "goodwill", "adj:1", START, expiry_days=365)
    assert moved == Movement(True, 25, 25)
    [entry] = await entries(db, mid)
    assert (entry.kind, entry.amount, entry.remaining) == ("adjust", 25, 25)
    assert entry.expires_at == START.astimezone(UTC) + timedelta(days=365)


async def test_negative_adjustment_spends_soonest_expiring_first(db, new_member):
    mid = await new_member()
    await earn(db, mid, 30, "late", START, days=200)
    await earn(db, mid, 30, "soon", START, days=20)
    async with db.transaction() as session:
        moved = await ledger.adjust(session, mid, -40, "fix", "adj:1", START, expiry_days=365)
    assert moved == Movement(True, -40, 20)
    assert await remaining_by_key(db, mid) == {"late": 20, "soon": 0}
    assert [(e.kind, e.amount) for e in await entries(db, mid)][-1] == ("adjust", -40)


async def test_negative_adjustment_never_goes_below_zero(db, new_member):
    mid = await new_member()
    await earn(db, mid, 30, "e1", START)
    with pytest.raises(InsufficientPoints):
        async with db.transaction() as session:
            await ledger.adjust(session, mid, -31, "fix", "adj:1", START, expiry_days=365)
    assert await points(db, mid) == 30
    assert len(await entries(db, mid)) == 1


async def test_adjustment_with_the_same_key_twice_applies_once(db, new_member):
    mid = await new_member()
    for _ in range(2):
        async with db.transaction() as session:
            last = await ledger.adjust(session, mid, 15, "fix", "adj:1", START, expiry_days=365)
    assert last == Movement(False, 0, 15)
    assert await points(db, mid) == 15


async def test_zero_adjustment_is_refused(db, new_member):
    mid = await new_member()
    with pytest.raises(ValueError):
        async with db.transaction() as session:
            await ledger.adjust(session, mid, 0, "fix", "adj:0", START, expiry_days=365)
    assert await entries(db, mid) == []


# --- reverse ------------------------------------------------------------------------------


async def reverse(db, member_id, amount, key, now, lot_key=None):
    async with db.transaction() as session:
        return await ledger.reverse(session, member_id, amount, "refund", key, now, lot_key=lot_key)


async def test_reverse_with_lot_key_takes_from_that_lot_first(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "checkin:1", START, days=30)
    await earn(db, mid, 100, "order:A", START, days=365)
    moved = await reverse(db, mid, 60, "refund:A", START, lot_key="order:A")
    assert moved == Movement(True, -60, 140)
    assert await remaining_by_key(db, mid) == {"checkin:1": 100, "order:A": 40}
    assert [(e.kind, e.amount, e.key) for e in await entries(db, mid)][-1] == (
        "reverse",
        -60,
        "refund:A",
    )


async def test_reverse_beyond_its_lot_continues_with_the_soonest_expiring(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "late", START, days=300)
    await earn(db, mid, 100, "soon", START, days=30)
    await earn(db, mid, 50, "order:A", START, days=365)
    await spend(db, mid, 30, "s1", START)  # from "soon": 70 left there
    moved = await reverse(db, mid, 120, "refund:A", START, lot_key="order:A")
    assert moved == Movement(True, -120, 100)
    assert await remaining_by_key(db, mid) == {"late": 100, "soon": 0, "order:A": 0}


async def test_reverse_is_capped_at_the_balance(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "order:A", START)
    await spend(db, mid, 70, "s1", START)
    moved = await reverse(db, mid, 100, "refund:A", START, lot_key="order:A")
    assert moved == Movement(True, -30, 0)
    assert [(e.kind, e.amount) for e in await entries(db, mid)] == [
        ("earn", 100),
        ("spend", -70),
        ("reverse", -30),
    ]
    assert await points(db, mid) == 0


async def test_reverse_with_the_same_key_twice_applies_once(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "order:A", START)
    assert await reverse(db, mid, 40, "refund:A", START, "order:A") == Movement(True, -40, 60)
    assert await reverse(db, mid, 40, "refund:A", START, "order:A") == Movement(False, 0, 60)
    assert await points(db, mid) == 60
    assert await remaining_by_key(db, mid) == {"order:A": 60}


async def test_reverse_of_an_expired_lot_takes_only_what_is_still_held(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "order:A", START, days=10)
    await earn(db, mid, 20, "later", START, days=100)
    moved = await reverse(db, mid, 100, "refund:A", START + timedelta(days=10), "order:A")
    assert moved == Movement(True, -20, 0)
    assert [(e.kind, e.amount) for e in await entries(db, mid)] == [
        ("earn", 100),
        ("earn", 20),
        ("expire", -100),
        ("reverse", -20),
    ]


# --- expiry -------------------------------------------------------------------------------


async def test_expire_due_expires_only_lots_past_their_date(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "d10", START, days=10)
    await earn(db, mid, 100, "d20", START, days=20)
    await earn(db, mid, 100, "d30", START, days=30)
    await spend(db, mid, 30, "s1", START)  # d10 keeps 70
    assert await expire(db, mid, START + timedelta(days=20)) == 170
    ids = {e.key: e.id for e in await entries(db, mid)}
    expired = [(e.amount, e.key) for e in await entries(db, mid) if e.kind == "expire"]
    assert sorted(expired) == sorted(
        [(-70, f"expire:{ids['d10']}"), (-100, f"expire:{ids['d20']}")]
    )
    assert await remaining_by_key(db, mid) == {"d10": 0, "d20": 0, "d30": 100}
    assert await points(db, mid) == 100


async def test_expire_due_writes_nothing_for_a_fully_spent_lot(db, new_member):
    mid = await new_member()
    await earn(db, mid, 50, "d10", START, days=10)
    await earn(db, mid, 50, "d40", START, days=40)
    await spend(db, mid, 50, "s1", START)
    assert await expire(db, mid, START + timedelta(days=15)) == 0
    assert [e.kind for e in await entries(db, mid)] == ["earn", "earn", "spend"]
    assert await points(db, mid) == 50


async def test_expire_due_is_idempotent(db, new_member):
    mid = await new_member()
    await earn(db, mid, 60, "d10", START, days=10)
    later = START + timedelta(days=10)
    assert await expire(db, mid, later) == 60
    assert await expire(db, mid, later) == 0
    assert await expire(db, mid, later + timedelta(days=400)) == 0
    assert [(e.kind, e.amount) for e in await entries(db, mid)] == [("earn", 60), ("expire", -60)]
    assert await points(db, mid) == 0


async def test_members_with_due_lots_lists_only_holders_of_due_points(db, new_member):
    due, fresh, spent = await new_member(), await new_member(), await new_member()
    await earn(db, due, 10, "due", START, days=5)
    await earn(db, fresh, 10, "fresh", START, days=50)
    await earn(db, spent, 10, "spent", START, days=5)
    await spend(db, spent, 10, "s-spent", START)
    async with db.sessions() as session:
        assert await ledger.members_with_due_lots(session, START + timedelta(days=5)) == [due]
        assert await ledger.members_with_due_lots(session, START + timedelta(days=4)) == []


async def test_expiring_within_counts_what_is_left_of_lots_due_in_the_window(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "d10", START, days=10)
    await earn(db, mid, 40, "d30", START, days=30)
    await earn(db, mid, 1000, "d31", START, days=31)
    await spend(db, mid, 25, "s1", START)  # d10 keeps 75
    await earn(db, mid, 7, "d2", START, days=2)
    async with db.sessions() as session:
        assert await ledger.expiring_within(session, mid, START, 30) == 7 + 75 + 40
        assert await ledger.expiring_within(session, mid, START, 9) == 7
        assert await ledger.expiring_within(session, mid, START, 10) == 7 + 75
        assert await ledger.expiring_within(session, mid, START, 31) == 7 + 75 + 40 + 1000
        # Two days on, d2 is due (not yet swept): it is past, not "expiring within".
        later = START + timedelta(days=2)
        assert await ledger.expiring_within(session, mid, later, 30) == 75 + 40 + 1000
        assert await ledger.expiring_within(session, mid, later, 7) == 0


# --- reads --------------------------------------------------------------------------------


async def test_balance_of_and_ledger_sum_agree_after_every_kind_of_movement(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "e1", START, days=10)
    await earn(db, mid, 50, "e2", START)
    await spend(db, mid, 30, "s1", START)
    async with db.transaction() as session:
        await ledger.adjust(session, mid, 12, "fix", "a1", START, expiry_days=365)
        await ledger.adjust(session, mid, -2, "fix", "a2", START, expiry_days=365)
    await reverse(db, mid, 20, "r1", START, "e2")
    await expire(db, mid, START + timedelta(days=10))
    # e1 70 left after the spend: -2 from it too, expired 68; e2 30; a1 12
    async with db.sessions() as session:
        assert await ledger.balance_of(session, mid) == 42
        assert await ledger.ledger_sum(session, mid) == 42
    assert sum((await remaining_by_key(db, mid)).values()) == 42


async def test_ledger_sum_of_a_member_without_entries_is_zero(db, new_member):
    mid = await new_member()
    async with db.sessions() as session:
        assert await ledger.ledger_sum(session, mid) == 0
        assert await ledger.balance_of(session, mid) == 0
        assert await ledger.expiring_within(session, mid, START, 30) == 0
        assert await ledger.recent(session, mid) == []


async def test_recent_lists_newest_first_up_to_the_limit(db, new_member):
    mid, other = await new_member(), await new_member()
    await earn(db, mid, 10, "e1", START)
    await earn(db, mid, 20, "e2", START + timedelta(hours=2))
    await earn(db, mid, 30, "e3", START + timedelta(hours=1))
    await earn(db, mid, 40, "e4", START + timedelta(hours=2))  # same time as e2: later id first
    await earn(db, other, 99, "other", START + timedelta(days=1))
    async with db.sessions() as session:
        newest = await ledger.recent(session, mid)
        top2 = await ledger.recent(session, mid, limit=2)
    assert [e.idempotency_key for e in newest] == ["e4", "e2", "e3", "e1"]
    assert [e.idempotency_key for e in top2] == ["e4", "e2"]
    assert newest[0].created_at == (START + timedelta(hours=2)).astimezone(UTC)


# --- concurrency (each call in its own transaction; PostgreSQL runs them side by side) -----


async def test_concurrent_spends_never_overdraw(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "e1", START)

    async def attempt(i: int) -> Movement | None:
        try:
            return await spend(db, mid, 30, f"s{i}", START)
        except InsufficientPoints:
            return None

    results = await asyncio.gather(*(attempt(i) for i in range(10)))
    assert sorted(r.balance for r in results if r is not None) == [10, 40, 70]
    assert results.count(None) == 7
    assert await points(db, mid) == 10
    assert await remaining_by_key(db, mid) == {"e1": 10}


async def test_concurrent_spends_with_one_key_apply_once(db, new_member):
    mid = await new_member()
    await earn(db, mid, 100, "e1", START)
    results = await asyncio.gather(*(spend(db, mid, 30, "redeem:1", START) for _ in range(10)))
    assert [r.applied for r in results].count(True) == 1
    assert {r.balance for r in results} == {70}
    assert [e.kind for e in await entries(db, mid)] == ["earn", "spend"]


async def test_concurrent_earns_with_one_key_apply_once(db, new_member):
    mid = await new_member()
    results = await asyncio.gather(*(earn(db, mid, 25, "order:1", START) for _ in range(10)))
    assert [r.applied for r in results].count(True) == 1
    assert await points(db, mid) == 25
    assert len(await entries(db, mid)) == 1


async def test_concurrent_expiry_sweeps_expire_each_lot_once(db, new_member):
    mid = await new_member()
    await earn(db, mid, 30, "a", START, days=5)
    await earn(db, mid, 20, "b", START, days=6)
    later = START + timedelta(days=7)
    swept = await asyncio.gather(*(expire(db, mid, later) for _ in range(8)))
    assert sorted(swept) == [0] * 7 + [50]
    assert [e.amount for e in await entries(db, mid) if e.kind == "expire"] in (
        [-30, -20],
        [-20, -30],
    )
    assert await points(db, mid) == 0
