"""Each nudge job with an injected clock: who gets what, and never twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.jobs import birthdays, dormant, expiry, reminders, tier_review
from storage import checkins, ledger, ledger_reads, members, nudges
from tests.conftest import SHANGHAI, START
from tests.jobs.conftest import pushes

YEAR = timedelta(days=365)


async def earn(core, member_id, amount, key, at):
    async with core.services.db.transaction() as session:
        await ledger.earn(session, member_id, amount, "test", key, at, expiry_days=365)


async def texts(core, kind):
    return [(p.member_id, p.payload["text"]) for p in await pushes(core) if p.kind == kind]


# --- expiry --------------------------------------------------------------------------------


async def test_expiry_takes_points_past_their_date_once(core, env, new_member):
    member_id = await new_member()
    await earn(core, member_id, 100, "old", START - YEAR)
    await earn(core, member_id, 30, "new", START - timedelta(days=10))

    assert await expiry.run(env) == 100
    assert await expiry.run(env) == 0

    async with core.services.db.reader() as session:
        assert await ledger.balance_of(session, member_id) == 30
        assert await ledger.ledger_sum(session, member_id) == 30


async def test_a_long_expiry_run_stamps_each_entry_with_its_own_time(
    core, env, new_member, clock, monkeypatch
):
    """Entries stamped with the run's start would land in hours the stats roll-up closed
    while the run went on, and vanish from the points figures."""
    first, second = await new_member(), await new_member()
    await earn(core, first, 100, "a", START - YEAR)
    await earn(core, second, 40, "b", START - YEAR)
    real = ledger.expire_due

    async def slow(session, member_id, now):
        expired = await real(session, member_id, now)
        clock.advance(minutes=80)  # a run slowed down by a crowd
        return expired

    monkeypatch.setattr(ledger, "expire_due", slow)
    assert await expiry.run(env) == 140

    async with core.services.db.reader() as session:
        stamps = [
            e.created_at.replace(tzinfo=None)
            for m in (first, second)
            for e in await ledger_reads.recent(session, m)
            if e.kind == ledger.EXPIRE
        ]
    # The second member's transaction came 80 minutes after the first's.
    assert len(stamps) == 2
    assert abs(stamps[1] - stamps[0]) == timedelta(minutes=80)


# --- reminders -----------------------------------------------------------------------------

REMINDER = (
    "Reminder: {points} of your points expire soon, the first on {day}. Send /points to see them."
)


async def test_reminder_goes_once_per_member_and_expiry_date_even_run_three_times(
    core, env, new_member
):
    alice, bob = await new_member(), await new_member()
    await earn(core, alice, 100, "a1", START - timedelta(days=340))  # expires 04-04
    await earn(core, alice, 20, "a2", START - timedelta(days=339))
    await earn(core, bob, 100, "b1", START - timedelta(days=200))  # not within 30 days

    assert [await reminders.run(env) for _ in range(3)] == [1, 0, 0]

    assert await texts(core, "reminder") == [(alice, REMINDER.format(points=120, day="4/4"))]
    [push] = await pushes(core)
    assert push.dedupe_key == f"reminder:{alice}:2026-04-04"


async def test_reminder_is_not_repeated_for_the_same_expiry_date(core, env, new_member, clock):
    alice = await new_member()
    await earn(core, alice, 100, "a1", START - timedelta(days=340))
    await reminders.run(env)

    clock.advance(days=8)

    assert await reminders.run(env) == 0


async def test_points_entering_the_window_later_get_their_own_reminder_after_the_gap(
    core, env, new_member, clock
):
    alice = await new_member()
    await earn(core, alice, 100, "a1", START - timedelta(days=340))  # expires 04-04
    await earn(core, alice, 40, "a2", START - timedelta(days=320))  # expires 04-24
    await reminders.run(env)
    clock.advance(days=25, seconds=1)  # the first lot is gone, the second is due

    await expiry.run(env)

    assert await reminders.run(env) == 1
    assert (await texts(core, "reminder"))[-1] == (alice, REMINDER.format(points=40, day="4/24"))


# --- birthdays -----------------------------------------------------------------------------

GREETING = "Happy birthday! Check in today for 2× points: /checkin"


async def born(core, member_id, mm_dd):
    async with core.services.db.transaction() as session:
        await members.set_birthday_once(session, member_id, mm_dd)


async def test_birthday_greeting_goes_once_a_year(core, env, new_member, clock):
    alice, bob = await new_member(), await new_member()
    await born(core, alice, "03-10")
    await born(core, bob, "03-11")

    assert [await birthdays.run(env) for _ in range(3)] == [1, 0, 0]
    clock.advance(days=365)
    assert await birthdays.run(env) == 1

    assert await texts(core, "birthday") == [(alice, GREETING), (alice, GREETING)]


async def test_birthday_found_after_midnight_is_greeted_in_the_morning(
    core, env, new_member, clock
):
    alice = await new_member()
    await born(core, alice, "03-11")
    clock.set(datetime(2026, 3, 11, 0, 30, tzinfo=SHANGHAI))

    assert await birthdays.run(env) == 1

    [push] = await pushes(core)
    assert push.next_attempt_at == datetime(2026, 3, 11, 8, 0, tzinfo=SHANGHAI)


async def test_birthday_found_late_at_night_is_not_greeted_the_next_morning(
    core, env, new_member, clock
):
    alice = await new_member()
    await born(core, alice, "03-10")
    clock.set(datetime(2026, 3, 10, 22, 30, tzinfo=SHANGHAI))

    assert await birthdays.run(env) == 0


async def test_leap_day_birthdays_are_greeted_on_the_28th_of_other_years(
    core, env, new_member, clock
):
    alice = await new_member()
    await born(core, alice, "02-29")
    clock.set(datetime(2027, 2, 28, 10, 0, tzinfo=SHANGHAI))

    assert await birthdays.run(env) == 1
    clock.set(datetime(2027, 3, 1, 10, 0, tzinfo=SHANGHAI))
    assert await birthdays.run(env) == 0


# --- dormant -------------------------------------------------------------------------------


async def checked_in(core, member_id, *days_ago):
    async with core.services.db.transaction() as session:
        for ago in sorted(days_ago, reverse=True):
            day = START.date() - timedelta(days=ago)
            await checkins.record(session, member_id, day, START, lambda streak: 5)


async def test_quiet_member_gets_a_wake_up_with_reasons_to_come_back(core, env, new_member, clock):
    clock.set(START - timedelta(days=60))
    alice = await new_member()
    clock.set(START)
    await earn(core, alice, 70, "a1", START - timedelta(days=350))  # expires 03-25
    await earn(core, alice, 50, "a2", START - timedelta(days=40))
    await checked_in(core, alice, 35, 34, 33)

    assert await dormant.run(env) == 1

    assert await texts(core, "dormant") == [
        (
            alice,
            "We miss you! You have 120 points.\n"
            "70 of them expire soon, the first on 3/25.\n"
            "Your last check-in streak was 3 days.\n"
            "Check in today to start a new streak: /checkin",
        )
    ]


async def test_wake_ups_come_at_most_once_a_month(core, env, new_member, clock):
    clock.set(START - timedelta(days=60))
    await new_member()
    clock.set(START)

    runs = [await dormant.run(env)]
    for _ in range(29):
        clock.advance(days=1)
        runs.append(await dormant.run(env))
    clock.advance(days=1)
    runs.append(await dormant.run(env))

    assert runs == [1] + [0] * 29 + [1]


async def test_no_wake_up_for_the_muted_nor_the_active(core, env, new_member, clock):
    clock.set(START - timedelta(days=60))
    muted, active = await new_member(), await new_member()
    clock.set(START)
    async with core.services.db.transaction() as session:
        await nudges.mute(session, muted, START)
    await checked_in(core, active, 29)

    assert await dormant.run(env) == 0
    assert await pushes(core) == []


# --- tier review ---------------------------------------------------------------------------


async def gold_member(core, new_member, growth=2500, tier="gold"):
    member_id = await new_member()
    await grow(core, member_id, growth, tier)
    return member_id


async def grow(core, member_id, growth, tier=None):
    async with core.services.db.transaction() as session:
        await members.add_growth(session, member_id, growth)
        if tier is not None:
            await members.set_tier(session, member_id, tier)


async def tier_of(core, member_id):
    async with core.services.db.reader() as session:
        return (await members.get(session, member_id)).tier


async def test_no_review_before_twelve_months(core, env, new_member, clock):
    member_id = await gold_member(core, new_member, growth=0)
    clock.advance(days=364)

    assert await tier_review.run(env) == 0

    assert await tier_of(core, member_id) == "gold"


async def test_growth_below_the_tier_in_a_year_moves_down_one_tier_and_says_why(
    core, env, new_member, clock
):
    member_id = await gold_member(core, new_member)
    clock.advance(days=365)
    assert await tier_review.run(env) == 0  # 2500 earned in the first year: kept
    await grow(core, member_id, 1999)
    clock.advance(days=365)

    assert [await tier_review.run(env) for _ in range(3)] == [1, 0, 0]

    assert await tier_of(core, member_id) == "silver"
    assert await texts(core, "tier-review") == [
        (
            member_id,
            "Your yearly tier review: you earned 1999 growth this past year, and Gold needs "
            "2000 a year. Your tier is now Silver. Send /tier to see your benefits and progress.",
        )
    ]


async def test_reaching_the_threshold_in_the_year_keeps_the_tier(core, env, new_member, clock):
    member_id = await gold_member(core, new_member)
    clock.advance(days=365)
    await tier_review.run(env)
    await grow(core, member_id, 2000)
    clock.advance(days=365)

    assert await tier_review.run(env) == 0

    assert await tier_of(core, member_id) == "gold"


async def test_review_moves_one_tier_a_year_and_leaves_the_lowest_alone(
    core, env, new_member, clock
):
    member_id = await gold_member(core, new_member, growth=0, tier="diamond")
    tiers = []
    for _ in range(5):
        clock.advance(days=365)
        await tier_review.run(env)
        tiers.append(await tier_of(core, member_id))

    assert tiers == ["gold", "silver", "bronze", "bronze", "bronze"]
    assert len(await texts(core, "tier-review")) == 3
