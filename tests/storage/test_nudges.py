"""The nudge jobs' questions to the database, on both backends: muting, points expiring soon,
birthdays, members gone quiet, tiers due for review."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from storage import checkins, ledger, members, nudges, orders, outbox
from storage.outbox import Target
from tests.conftest import START

DAY = timedelta(days=1)
GAP = timedelta(days=7)


async def earn(db, member_id, amount, key, at):
    async with db.transaction() as session:
        await ledger.earn(session, member_id, amount, "test", key, at, expiry_days=365)


async def pushed(db, member_id, kind, at):
    async with db.transaction() as session:
        await outbox.enqueue(
            session, f"{kind}:{member_id}:{at}", Target("console", "x", member_id), kind, {}, at
        )


# --- mute ----------------------------------------------------------------------------------


async def test_mute_and_unmute_flip_once_each(db, new_member):
    member_id = await new_member()
    async with db.transaction() as session:
        assert await nudges.mute(session, member_id, START)
        assert not await nudges.mute(session, member_id, START + DAY)
    async with db.reader() as session:
        assert (await members.get(session, member_id)).muted_at == START
        assert await nudges.muted_among(session, {member_id}) == {member_id}
    async with db.transaction() as session:
        assert await nudges.unmute(session, member_id)
        assert not await nudges.unmute(session, member_id)
    async with db.reader() as session:
        assert await nudges.muted_among(session, {member_id}) == set()


# --- expiring points -----------------------------------------------------------------------


async def test_expiring_soon_sums_the_points_in_the_window_per_member(db, new_member):
    alice, bob = await new_member(), await new_member()
    await earn(db, alice, 30, "a1", START - timedelta(days=340))  # expires in 25 days
    await earn(db, alice, 20, "a2", START - timedelta(days=338))  # in 27 days
    await earn(db, alice, 99, "a3", START - timedelta(days=300))  # in 65 days: outside
    await earn(db, bob, 99, "b1", START - timedelta(days=100))
    async with db.reader() as session:
        found = await nudges.expiring_soon(session, START, 30, kind="reminder", gap=GAP)
        assert await nudges.expiring_of(session, alice, START, 30) == (
            50,
            START + timedelta(days=25),
        )
    assert found == [nudges.Expiring(alice, 50, START + timedelta(days=25))]


async def test_expiring_soon_skips_members_reminded_within_the_gap(db, new_member):
    alice = await new_member()
    await earn(db, alice, 30, "a1", START - timedelta(days=340))
    await pushed(db, alice, "reminder", START - timedelta(days=6))
    async with db.reader() as session:
        assert await nudges.expiring_soon(session, START, 30, kind="reminder", gap=GAP) == []
        later = await nudges.expiring_soon(session, START + DAY, 30, kind="reminder", gap=GAP)
    assert [e.member_id for e in later] == [alice]


# --- birthdays -----------------------------------------------------------------------------


async def test_born_on_finds_the_members_of_the_days(db, new_member):
    alice, bob, _ = await new_member(), await new_member(), await new_member()
    async with db.transaction() as session:
        await members.set_birthday_once(session, alice, "03-10")
        await members.set_birthday_once(session, bob, "02-29")
    async with db.reader() as session:
        assert await nudges.born_on(session, {"03-10"}) == [alice]
        assert await nudges.born_on(session, {"02-28", "02-29"}) == [bob]


# --- gone quiet ----------------------------------------------------------------------------


async def test_gone_quiet_lists_members_without_checkin_or_order_for_the_days(
    db, new_member, clock
):
    clock.set(START - timedelta(days=40))
    quiet, checked_in, ordered, muted = [await new_member() for _ in range(4)]
    clock.set(START - timedelta(days=5))
    new = await new_member()
    today = START.date()
    async with db.transaction() as session:
        await checkins.record(session, checked_in, today - timedelta(days=29), START, lambda s: 5)
        await orders.insert_paid(
            session, "o1", ordered, Decimal("9.90"), "CNY", START - timedelta(days=29)
        )
        await nudges.mute(session, muted, START)
    async with db.reader() as session:
        found = await nudges.gone_quiet(
            session, START, today, 30, kind="dormant", every=timedelta(days=30)
        )
    assert found == [quiet]
    assert new not in found


async def test_gone_quiet_skips_members_nudged_within_every(db, new_member, clock):
    clock.set(START - timedelta(days=90))
    quiet = await new_member()
    await pushed(db, quiet, "dormant", START - timedelta(days=29))
    every = timedelta(days=30)
    async with db.reader() as session:
        assert (
            await nudges.gone_quiet(session, START, START.date(), 30, kind="dormant", every=every)
            == []
        )
        again = await nudges.gone_quiet(
            session, START + DAY, START.date() + DAY, 30, kind="dormant", every=every
        )
    assert again == [quiet]


# --- tier reviews --------------------------------------------------------------------------


async def set_tier(db, member_id, growth, tier):
    async with db.transaction() as session:
        await members.add_growth(session, member_id, growth)
        await members.set_tier(session, member_id, tier)


async def test_due_for_review_counts_a_year_from_joining_then_from_the_last_review(db, new_member):
    gold, bronze = await new_member(), await new_member()
    await set_tier(db, gold, 2500, "gold")
    year = timedelta(days=365)
    async with db.reader() as session:
        assert (
            await nudges.due_for_review(session, START + year - DAY, year, skip_tier="bronze") == []
        )
        [base] = await nudges.due_for_review(session, START + year, year, skip_tier="bronze")
    assert base == nudges.ReviewBase(gold, "gold", START, 0)
    assert bronze != base.member_id

    async with db.transaction() as session:
        assert await nudges.record_review(session, base, START + year, 2500, "gold")
        assert not await nudges.record_review(session, base, START + year, 2500, "gold")
    async with db.reader() as session:
        assert (
            await nudges.due_for_review(session, START + 2 * year - DAY, year, skip_tier="bronze")
            == []
        )
        [next_base] = await nudges.due_for_review(
            session, START + 2 * year, year, skip_tier="bronze"
        )
    assert next_base == nudges.ReviewBase(gold, "gold", START + year, 2500)
