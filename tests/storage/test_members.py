"""Members, identities, merging and one-time link codes on both backends."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal

from storage import checkins, ledger, links, members, orders
from storage.members import INVITE_ALPHABET
from storage.models import Identity, LedgerEntry, LinkCode, Member
from tests.conftest import START
from tests.storage.support import checkin_rows, count, entries, member

DAY1 = date(2026, 3, 8)
DAY2 = date(2026, 3, 9)


# --- get_or_create ------------------------------------------------------------------------


async def test_first_contact_creates_a_member_and_the_second_finds_it(db):
    first, created = await members.get_or_create(db, "telegram", "1001", START, display_name="Ann")
    again, created_again = await members.get_or_create(
        db, "telegram", "1001", START + timedelta(days=1)
    )
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    stored = await member(db, first.id)
    assert (stored.points, stored.growth, stored.tier, stored.display_name) == (
        0,
        0,
        "bronze",
        "Ann",
    )
    assert stored.created_at == START
    assert stored.merged_into_id is None
    assert again.invite_code == first.invite_code == stored.invite_code
    async with db.sessions() as session:
        ids = await members.identities_of(session, first.id)
    assert [(i.channel, i.external_id, i.unreachable) for i in ids] == [("telegram", "1001", False)]


async def test_same_external_id_in_another_app_is_another_member(db):
    on_telegram, _ = await members.get_or_create(db, "telegram", "42", START)
    on_wechat, created = await members.get_or_create(db, "wechat", "42", START)
    assert created
    assert on_wechat.id != on_telegram.id
    assert on_wechat.invite_code != on_telegram.invite_code


async def test_thirty_concurrent_first_contacts_create_one_member_and_one_identity(db):
    results = await asyncio.gather(
        *(members.get_or_create(db, "wechat", "openid-race", START) for _ in range(30))
    )
    assert {m.id for m, _ in results} == {results[0][0].id}
    assert [created for _, created in results].count(True) == 1
    assert await count(db, Member) == 1
    assert await count(db, Identity) == 1


async def test_long_display_names_are_cut_to_64_characters(db):
    created, _ = await members.get_or_create(db, "console", "long", START, display_name="x" * 80)
    assert (await member(db, created.id)).display_name == "x" * 64


async def test_invite_codes_use_only_the_unambiguous_alphabet(db, new_member):
    assert not set("01OIL") & set(INVITE_ALPHABET)
    drawn = [members.new_invite_code() for _ in range(2000)]
    assert all(len(code) == 6 for code in drawn)
    assert set("".join(drawn)) <= set(INVITE_ALPHABET)
    assert len(set("".join(drawn))) > 25  # really random over the alphabet, not a few letters
    for _ in range(5):
        code = (await member(db, await new_member())).invite_code
        assert len(code) == 6 and set(code) <= set(INVITE_ALPHABET)


async def test_birthday_is_set_only_once(db, new_member):
    mid = await new_member()
    async with db.transaction() as session:
        assert await members.set_birthday_once(session, mid, "05-06") is True
    async with db.transaction() as session:
        assert await members.set_birthday_once(session, mid, "12-31") is False
    assert (await member(db, mid)).birthday == "05-06"


async def test_growth_is_added_and_taken_back_never_below_zero(db, new_member):
    mid = await new_member()
    async with db.transaction() as session:
        assert await members.add_growth(session, mid, 120) == (120, "bronze")
        assert await members.add_growth(session, mid, -20) == (100, "bronze")
        await members.set_tier(session, mid, "silver")
        assert await members.add_growth(session, mid, -500) == (0, "silver")
    assert (await member(db, mid)).growth == 0


# --- merge --------------------------------------------------------------------------------


async def checkin(db, member_id: int, day: date, points: int) -> None:
    async with db.transaction() as session:
        await checkins.record(session, member_id, day, START, lambda _streak: points)


async def test_merge_moves_identities_ledger_checkins_and_orders(db):
    a, _ = await members.get_or_create(db, "telegram", "tg-a", START, display_name="Ann")
    b, _ = await members.get_or_create(db, "wechat", "wx-b", START)
    async with db.transaction() as session:
        await ledger.earn(session, a.id, 100, "t", "a-earn", START, expiry_days=365)
        await ledger.earn(session, b.id, 40, "t", "b-earn", START, expiry_days=365)
        await ledger.spend(session, b.id, 10, "t", "b-spend", START)
        await members.add_growth(session, a.id, 10)
        await members.add_growth(session, b.id, 25)
        await members.set_locale(session, a.id, "en")
        await members.set_locale(session, b.id, "zh_CN")
        await members.set_birthday_once(session, b.id, "05-06")
        await members.set_tier(session, b.id, "silver")
        await orders.insert_paid(session, "ord-1", b.id, Decimal("25.00"), "CNY", START)
        code = (await links.issue(session, b.id, "wechat", START, 10)).code
    await checkin(db, a.id, DAY1, 5)
    await checkin(db, b.id, DAY1, 10)
    await checkin(db, b.id, DAY2, 7)

    async with db.transaction() as session:
        merged = await members.merge(session, a.id, b.id)

    assert merged.survivor.id == a.id
    assert (merged.survivor.points, merged.survivor.growth) == (130, 35)
    assert (merged.survivor.locale, merged.survivor.birthday) == ("en", "05-06")
    assert merged.survivor.display_name == "Ann"
    assert merged.loser_tier == "silver"
    assert merged.duplicate_days == [(DAY1, 10)]
    async with db.sessions() as session:
        ids = await members.identities_of(session, a.id)
        assert await ledger.ledger_sum(session, a.id) == 130
        assert await links.peek(session, code) is None
        order = await orders.get(session, "ord-1")
    assert sorted((i.channel, i.external_id) for i in ids) == [
        ("telegram", "tg-a"),
        ("wechat", "wx-b"),
    ]
    assert [e.key for e in await entries(db, a.id)] == ["a-earn", "b-earn", "b-spend"]
    assert await count(db, LedgerEntry, LedgerEntry.member_id == b.id) == 0
    # The survivor's row for the shared day stays; the loser's other day moves over.
    assert [(day, pts) for day, _streak, pts in await checkin_rows(db, a.id)] == [
        (DAY1, 5),
        (DAY2, 7),
    ]
    assert await checkin_rows(db, b.id) == []
    assert order is not None and order.member_id == a.id
    loser = await member(db, b.id)
    assert (loser.points, loser.growth, loser.merged_into_id) == (0, 0, a.id)
    assert await count(db, LinkCode) == 0


async def test_merged_streaks_are_recounted_from_the_days(db, new_member):
    a, b = await new_member(), await new_member()
    await checkin(db, a, DAY1, 5)
    await checkin(db, b, DAY2, 5)  # stored streak 1: b had not checked in the day before
    async with db.transaction() as session:
        await members.merge(session, a, b)
        await checkins.recount_streaks(session, a)
    assert await checkin_rows(db, a) == [(DAY1, 1, 5), (DAY2, 2, 5)]


async def test_merge_then_identity_lookup_finds_the_survivor(db):
    a, _ = await members.get_or_create(db, "telegram", "tg", START)
    b, _ = await members.get_or_create(db, "wechat", "wx", START)
    async with db.transaction() as session:
        await members.merge(session, a.id, b.id)
    found, created = await members.get_or_create(db, "wechat", "wx", START)
    assert (found.id, created) == (a.id, False)


# --- link codes ---------------------------------------------------------------------------


async def test_link_code_is_six_digits_and_expires_after_the_given_minutes(db, new_member):
    mid = await new_member()
    async with db.transaction() as session:
        issued = await links.issue(session, mid, "telegram", START, 10)
    assert len(issued.code) == 6 and issued.code.isdigit()
    async with db.sessions() as session:
        stored = await links.peek(session, issued.code)
    assert stored is not None
    assert (stored.member_id, stored.channel) == (mid, "telegram")
    assert stored.expires_at == START + timedelta(minutes=10)


async def test_take_returns_the_code_once(db, new_member):
    mid = await new_member()
    async with db.transaction() as session:
        code = (await links.issue(session, mid, "telegram", START, 10)).code
    async with db.transaction() as session:
        first = await links.take(session, code)
    async with db.transaction() as session:
        second = await links.take(session, code)
    assert first is not None and (first.code, first.member_id) == (code, mid)
    assert second is None


async def test_ten_concurrent_takes_of_one_code_give_it_to_exactly_one(db, new_member):
    mid = await new_member()
    async with db.transaction() as session:
        code = (await links.issue(session, mid, "wechat", START, 10)).code

    async def take() -> LinkCode | None:
        async with db.transaction() as session:
            return await links.take(session, code)

    taken = await asyncio.gather(*(take() for _ in range(10)))
    winners = [t for t in taken if t is not None]
    assert len(winners) == 1
    assert winners[0].member_id == mid
    assert await count(db, LinkCode) == 0


async def test_a_new_code_replaces_the_members_earlier_one(db, new_member):
    mid, other = await new_member(), await new_member()
    async with db.transaction() as session:
        old = (await links.issue(session, mid, "telegram", START, 10)).code
        others = (await links.issue(session, other, "telegram", START, 10)).code
        new = (await links.issue(session, mid, "telegram", START, 10)).code
    async with db.sessions() as session:
        assert old == new or await links.peek(session, old) is None
        assert await links.peek(session, new) is not None
        assert await links.peek(session, others) is not None


async def test_issuing_sweeps_expired_codes_of_everyone(db, new_member):
    mid, other = await new_member(), await new_member()
    async with db.transaction() as session:
        stale = (await links.issue(session, other, "telegram", START, 10)).code
    async with db.transaction() as session:
        await links.issue(session, mid, "telegram", START + timedelta(minutes=10), 10)
    async with db.sessions() as session:
        assert await links.peek(session, stale) is None
    assert await count(db, LinkCode) == 1
