"""Daily check-in through the console door: rewards, streaks, local days, tiers, birthdays."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from bot.channels.console import ConsoleChat
from storage import checkin_fast, checkins, invites, ledger, makeup, members
from tests.conftest import PRIVACY_LINE, SHANGHAI
from tests.handlers.conftest import Day, Entry
from tests.handlers.test_invites import code_of

SHANGHAI_DAY = date(2026, 3, 10)


async def test_first_checkin_credits_five_points_and_tells_tomorrows_reward(chat, probe):
    alice = chat("alice")

    reply = await alice.say("签到")

    assert reply is not None
    assert reply.text == (
        "Checked in! +5 points, 1-day streak. Balance: 5.\nTomorrow: +5 points." + PRIVACY_LINE
    )
    assert await probe.balance(alice) == 5
    assert await probe.entries(alice) == [Entry("earn", 5, "checkin")]
    assert await probe.checkins(alice) == [Day(SHANGHAI_DAY, 1, 5)]
    assert (await probe.member(alice)).growth == 1


async def test_second_checkin_same_day_credits_nothing(chat, probe, clock):
    alice = chat("alice")
    await alice.say("/checkin")
    clock.advance(hours=13, minutes=59)  # 23:59 in Shanghai, still the same day

    reply = await alice.say("checkin")

    assert reply is not None
    assert reply.text == (
        "You have already checked in today (1-day streak). Come back tomorrow for 5 points."
    )
    assert await probe.balance(alice) == 5
    assert len(await probe.entries(alice)) == 1
    assert (await probe.member(alice)).growth == 1


async def test_already_checked_in_tells_the_streak_and_tomorrows_reward(chat, clock):
    alice = chat("alice")
    for _ in range(3):
        await alice.say("checkin")
        clock.advance(days=1)
    await alice.say("checkin")  # day 4: +10

    reply = await alice.say("簽到")

    assert reply is not None
    assert reply.text == (
        "You have already checked in today (4-day streak). Come back tomorrow for 15 points."
    )


async def test_fifty_concurrent_checkins_credit_exactly_once(core, chat, probe, no_flood_limit):
    await chat("alice").say("help")
    doors = [ConsoleChat(core, "alice", locale_hint="en") for _ in range(50)]

    replies = await asyncio.gather(*(door.say("checkin") for door in doors))

    texts = [r.text for r in replies if r is not None]
    assert len(texts) == 50
    assert [t for t in texts if t.startswith("Checked in!")] == [
        "Checked in! +5 points, 1-day streak. Balance: 5.\nTomorrow: +5 points."
    ]
    already = "You have already checked in today (1-day streak). Come back tomorrow for 5 points."
    assert texts.count(already) == 49
    assert await probe.balance(chat("alice")) == 5
    assert await probe.checkins(chat("alice")) == [Day(SHANGHAI_DAY, 1, 5)]
    assert await probe.entries(chat("alice")) == [Entry("earn", 5, "checkin")]
    assert (await probe.member(chat("alice"))).growth == 1


async def test_fifty_concurrent_first_messages_make_one_member_checked_in_once(
    core, probe, no_flood_limit
):
    doors = [ConsoleChat(core, "newcomer", locale_hint="en") for _ in range(50)]

    replies = await asyncio.gather(*(door.say("checkin") for door in doors))

    assert sum(1 for r in replies if r is not None and r.text.startswith("Checked in!")) == 1
    assert await probe.balance(doors[0]) == 5
    assert len(await probe.checkins(doors[0])) == 1


async def test_day_boundary_is_midnight_in_shanghai_not_utc(chat, probe, clock):
    alice = chat("alice")
    clock.set(datetime(2026, 3, 10, 15, 59, tzinfo=UTC))  # 23:59 in Shanghai
    await alice.say("checkin")
    clock.set(datetime(2026, 3, 10, 16, 1, tzinfo=UTC))  # 00:01 on the 11th in Shanghai

    reply = await alice.say("checkin")

    assert reply is not None
    assert reply.text.splitlines()[0] == "Checked in! +5 points, 2-day streak. Balance: 10."
    assert await probe.checkins(alice) == [
        Day(date(2026, 3, 10), 1, 5),
        Day(date(2026, 3, 11), 2, 5),
    ]


async def test_two_utc_days_within_one_shanghai_day_are_one_checkin_day(chat, probe, clock):
    alice = chat("alice")
    clock.set(datetime(2026, 3, 9, 16, 1, tzinfo=UTC))  # 00:01 on the 10th in Shanghai
    await alice.say("checkin")
    clock.set(datetime(2026, 3, 10, 15, 59, tzinfo=UTC))  # 23:59 on the 10th in Shanghai

    reply = await alice.say("checkin")

    assert reply is not None
    assert reply.text.startswith("You have already checked in today (1-day streak).")
    assert await probe.balance(alice) == 5


async def test_missed_day_resets_the_streak(chat, probe, clock):
    alice = chat("alice")
    await alice.say("checkin")
    clock.advance(days=1)
    await alice.say("checkin")
    clock.advance(days=2)  # the 12th is skipped

    reply = await alice.say("checkin")

    assert reply is not None
    assert reply.text == "Checked in! +5 points, 1-day streak. Balance: 15.\nTomorrow: +5 points."
    assert [d.streak for d in await probe.checkins(alice)] == [1, 2, 1]


async def test_seven_day_cycle_pays_5_5_10_10_15_15_30_then_starts_again(chat, probe, clock):
    alice = chat("alice")
    credited = []
    for _ in range(8):
        reply = await alice.say("checkin")
        assert reply is not None
        credited.append(int(reply.text.split("+", 1)[1].split(" ", 1)[0]))
        clock.advance(days=1)

    assert credited == [5, 5, 10, 10, 15, 15, 30, 5]
    assert [d.streak for d in await probe.checkins(alice)] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert await probe.balance(alice) == 95


async def test_day_seven_reply_announces_the_cycle_restarting_at_five(chat, clock):
    alice = chat("alice")
    for _ in range(6):
        await alice.say("checkin")
        clock.advance(days=1)

    reply = await alice.say("checkin")

    assert reply is not None
    assert reply.text == (
        "Checked in! +30 points, 7-day streak. Balance: 90.\nTomorrow: +5 points.\n"
        "🏅 New badge: 7-day streak!"
    )


@pytest.mark.parametrize(
    ("tier", "growth", "points", "tomorrow"),
    [("silver", 500, 6, 6), ("gold", 2000, 7, 7), ("diamond", 10000, 10, 10)],
)
async def test_tier_multiplier_applies_to_checkin_points(
    chat, probe, tier, growth, points, tomorrow
):
    alice = chat("alice")
    await probe.set_growth(alice, growth, tier)

    reply = await alice.say("checkin")

    assert reply is not None
    assert reply.text == (
        f"Checked in! +{points} points, 1-day streak. Balance: {points}.\n"
        f"Tomorrow: +{tomorrow} points."
    )
    assert await probe.balance(alice) == points


async def test_birthday_checkin_doubles_the_points(chat, probe):
    alice = chat("alice")
    await alice.say("/birthday 03-10")
    await alice.say("yes")

    reply = await alice.say("checkin")

    assert reply is not None
    assert reply.text == (
        "Checked in! +10 points, 1-day streak. Balance: 10.\n"
        "Happy birthday! Today's check-in points are doubled.\n"
        "Tomorrow: +5 points."
    )
    assert await probe.balance(alice) == 10


async def test_birthday_double_stacks_with_the_tier_multiplier(chat, probe):
    alice = chat("alice")
    await probe.set_growth(alice, 500, "silver")
    await alice.say("/birthday 03-10")
    await alice.say("yes")

    reply = await alice.say("checkin")

    assert reply is not None
    assert reply.text.splitlines()[0] == "Checked in! +12 points, 1-day streak. Balance: 12."


async def test_eve_of_birthday_announces_double_points_tomorrow(chat):
    alice = chat("alice")
    await alice.say("/birthday 03-11")
    await alice.say("yes")

    reply = await alice.say("checkin")

    assert reply is not None
    assert reply.text == "Checked in! +5 points, 1-day streak. Balance: 5.\nTomorrow: +10 points."


async def test_crossing_500_growth_upgrades_to_silver_at_once_and_lists_benefits(chat, probe):
    alice = chat("alice")
    await probe.set_growth(alice, 499, "bronze")

    reply = await alice.say("checkin")

    assert reply is not None
    assert reply.text == (
        "Checked in! +5 points, 1-day streak. Balance: 5.\n"
        "Tomorrow: +6 points.\n"
        "Congratulations, you are now Silver! Your benefits:\n"
        "• Daily check-in points\n"
        "• Double check-in points on your birthday\n"
        "• 1.2× points on purchases and check-ins\n"
        "• Members-only communities"
    )
    upgraded = await probe.member(alice)
    assert (upgraded.tier, upgraded.growth) == ("silver", 500)


async def test_checkin_without_crossing_a_threshold_announces_no_upgrade(chat, probe):
    alice = chat("alice")
    await probe.set_growth(alice, 498, "bronze")

    reply = await alice.say("checkin")

    assert reply is not None
    assert "Congratulations" not in reply.text
    assert (await probe.member(alice)).tier == "bronze"


async def test_leap_day_birthday_is_celebrated_on_feb_28_in_common_years(chat, clock):
    alice = chat("alice")
    clock.set(datetime(2027, 2, 27, 10, 0, tzinfo=SHANGHAI))
    await alice.say("/birthday 02-29")
    await alice.say("yes")
    await alice.say("checkin")  # day 1: 5
    clock.advance(days=1)  # 2027-02-28: a common year, so the leap-day birthday is today
    reply = await alice.say("checkin")
    assert reply is not None
    assert reply.text.splitlines()[:2] == [
        "Checked in! +10 points, 2-day streak. Balance: 15.",
        "Happy birthday! Today's check-in points are doubled.",
    ]


async def test_a_checkin_waiting_behind_a_makeup_continues_the_made_up_streak(
    core, chat, probe, clock
):
    """The fast path's statement on PostgreSQL waits for the member's lock with a snapshot
    taken before: it must not store today as a streak of 1 next to the day just made up."""
    alice = chat("alice")
    await alice.say("checkin")
    clock.advance(days=2)
    member_id = (await probe.member(alice)).id
    held = asyncio.Event()

    async def make_up() -> None:
        async with core.services.db.transaction() as session:
            await ledger.lock_member(session, member_id)
            await makeup.fill(session, member_id, date(2026, 3, 11), date(2026, 3, 12), clock.now())
            held.set()
            await asyncio.sleep(0.5)

    holder = asyncio.create_task(make_up())
    await held.wait()
    reply = await alice.say("checkin")
    await holder

    assert reply is not None
    assert reply.text == (
        "Checked in! +10 points, 3-day streak. Balance: 15.\nTomorrow: +10 points."
    )
    assert await probe.checkins(alice) == [
        Day(SHANGHAI_DAY, 1, 5),
        Day(date(2026, 3, 11), 2, 0),
        Day(date(2026, 3, 12), 3, 10),
    ]
    assert await probe.balance(alice) == 15


@pytest.mark.parametrize("invited", [False, True], ids=["fast-path", "general-path"])
async def test_a_reward_of_zero_records_the_day_without_a_ledger_entry(core, chat, probe, invited):
    """A schedule may pay nothing on a day (or a multiplier floor it to 0): the check-in still
    counts for the streak, the balance is unchanged, and no entry of 0 is written. Invited:
    the first check-in settles the invite on the general path."""
    rules = core.services.rules
    checkin_rules = rules.checkin.model_copy(update={"streak_rewards": (0, 5)})
    core.services.rules = rules.model_copy(update={"checkin": checkin_rules})
    alice, bob = chat("alice"), chat("bob")
    if invited:
        await bob.say(f"invite {await code_of(alice)}")
    else:
        await bob.say("help")
    before = [] if not invited else [Entry("earn", 20, "invite-welcome")]

    reply = await bob.say("checkin")

    assert reply is not None
    balance = 20 if invited else 0
    assert reply.text == (
        f"Checked in! +0 points, 1-day streak. Balance: {balance}.\nTomorrow: +5 points."
    )
    assert await probe.checkins(bob) == [Day(SHANGHAI_DAY, 1, 0)]
    assert await probe.entries(bob) == before
    assert await probe.balance(bob) == balance
    assert (await probe.member(bob)).growth == 1
    assert await probe.balance(alice) == (50 if invited else 0)  # the inviter is paid all the same


async def test_a_lost_race_whose_winner_was_merged_away_answers_as_the_merged_member(
    core, chat, probe, monkeypatch
):
    """The concurrent check-in that won the day's key may be gone by the time it is read: its
    member was merged into another (the accounts linked) just after. The check-in runs once
    more as the merged member, which has the day."""
    alice, bob = chat("alice"), chat("bob")
    await alice.say("help")
    await bob.say("help")
    survivor, loser = (await probe.member(alice)).id, (await probe.member(bob)).id
    real = checkin_fast.check_in

    async def racing(db, plan):
        if plan.member_id != loser:
            return await real(db, plan)
        await real(db, plan)  # the winner of the day's key...
        async with db.transaction() as session:  # ...then Bob's accounts are linked
            await invites.lock_for_merge(session, survivor, loser)
            await members.merge(session, survivor, loser)
            await checkins.recount_streaks(session, survivor)
        return checkin_fast.Outcome(checkin_fast.CONFLICT)

    monkeypatch.setattr(checkin_fast, "check_in", racing)

    reply = await bob.say("checkin")

    assert reply is not None
    assert reply.text == (
        "You have already checked in today (1-day streak). Come back tomorrow for 5 points."
    )
    assert await probe.checkins(alice) == [Day(SHANGHAI_DAY, 1, 5)]
    assert await probe.balance(alice) == 5
