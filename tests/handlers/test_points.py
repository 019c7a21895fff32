"""`/points`: balance, points expiring within 30 days, the last ten entries; yearly expiry."""

from __future__ import annotations

from tests.conftest import PRIVACY_LINE
from tests.handlers.conftest import Entry


async def test_points_of_a_new_member_invite_to_check_in(chat):
    reply = await chat("alice").say("/points")

    assert reply is not None
    assert reply.text == (
        "Your points: 0\nNo points yet. Check in every day to earn some!" + PRIVACY_LINE
    )
    assert reply.private is True


async def test_points_show_balance_and_last_ten_entries_newest_first(chat, clock):
    alice = chat("alice")
    # 03-10 .. 03-21: 5 5 10 10 15 15 30 5 5 10 10 15, 03-18 the member day (× 2)
    for _ in range(12):
        await alice.say("checkin")
        clock.advance(days=1)

    reply = await alice.say("积分")

    assert reply is not None
    assert reply.text == (
        "Your points: 140\n"
        "Recent:\n"
        "03-21 +15 Check-in\n"
        "03-20 +10 Check-in\n"
        "03-19 +10 Check-in\n"
        "03-18 +10 Check-in\n"
        "03-17 +5 Check-in\n"
        "03-16 +30 Check-in\n"
        "03-15 +15 Check-in\n"
        "03-14 +15 Check-in\n"
        "03-13 +10 Check-in\n"
        "03-12 +10 Check-in"
    )


async def test_points_earned_340_days_ago_are_listed_as_expiring(chat, clock):
    alice = chat("alice")
    await alice.say("checkin")
    clock.advance(days=1)
    await alice.say("checkin")
    clock.advance(days=339)  # the first lot is 340 days old, the second 339

    reply = await alice.say("points")

    assert reply is not None
    assert reply.text == (
        "Your points: 10\n"
        "10 points expire within 30 days.\n"
        "Recent:\n"
        "03-11 +5 Check-in\n"
        "03-10 +5 Check-in"
    )


async def test_expiring_line_counts_only_lots_inside_the_30_day_window(chat, clock):
    alice = chat("alice")
    await alice.say("checkin")  # 5, expires 2027-03-10
    clock.advance(days=40)
    await alice.say("checkin")  # 5, expires 2027-04-19
    clock.advance(days=300)  # 2027-02-13: only the first lot is within 30 days

    reply = await alice.say("points")

    assert reply is not None
    assert reply.text.splitlines()[:2] == ["Your points: 10", "5 points expire within 30 days."]


async def test_points_earned_300_days_ago_are_not_listed_as_expiring(chat, clock):
    alice = chat("alice")
    await alice.say("checkin")
    clock.advance(days=300)

    reply = await alice.say("points")

    assert reply is not None
    assert reply.text == "Your points: 5\nRecent:\n03-10 +5 Check-in"


async def test_points_are_still_there_a_minute_before_365_days(chat, probe, clock):
    alice = chat("alice")
    await alice.say("checkin")
    clock.advance(days=365, minutes=-1)

    reply = await alice.say("points")

    assert reply is not None
    assert reply.text.splitlines()[:2] == ["Your points: 5", "5 points expire within 30 days."]
    assert await probe.balance(alice) == 5


async def test_points_expire_365_days_after_earning(chat, probe, clock):
    alice = chat("alice")
    await alice.say("checkin")
    clock.advance(days=365)

    reply = await alice.say("points")

    assert reply is not None
    assert reply.text == "Your points: 0\nRecent:\n03-10 -5 Expired\n03-10 +5 Check-in"
    assert await probe.balance(alice) == 0
    assert await probe.entries(alice) == [
        Entry("earn", 5, "checkin"),
        Entry("expire", -5, "expired"),
    ]


async def test_asking_for_points_twice_after_expiry_expires_once(chat, probe, clock):
    alice = chat("alice")
    await alice.say("checkin")
    clock.advance(days=400)
    await alice.say("points")

    reply = await alice.say("points")

    assert reply is not None
    assert reply.text.splitlines()[0] == "Your points: 0"
    assert [e.kind for e in await probe.entries(alice)] == ["earn", "expire"]


async def test_only_the_expired_lot_goes_and_newer_points_stay(chat, probe, clock):
    alice = chat("alice")
    await alice.say("checkin")  # 5 on 2026-03-10
    clock.advance(days=200)
    await alice.say("checkin")  # 5 on 2026-09-26, streak reset
    clock.advance(days=165)  # 2027-03-10: the first lot is due

    reply = await alice.say("points")

    assert reply is not None
    assert reply.text == (
        "Your points: 5\nRecent:\n03-10 -5 Expired\n09-26 +5 Check-in\n03-10 +5 Check-in"
    )
    assert await probe.balance(alice) == 5
