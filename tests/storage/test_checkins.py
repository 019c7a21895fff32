"""Daily check-in rows on both backends: streaks, same-day repeats and racing check-ins."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from sqlalchemy import update

from storage import checkins
from storage.checkins import CheckinResult
from storage.models import Checkin
from tests.conftest import START
from tests.storage.support import checkin_rows, count

CYCLE = [5, 5, 10, 10, 15, 15, 30]
TODAY = date(2026, 3, 10)


def reward(streak: int) -> int:
    return CYCLE[(streak - 1) % 7]


async def record(db, member_id: int, day: date, give=reward) -> CheckinResult:
    async with db.transaction() as session:
        return await checkins.record(session, member_id, day, START, give)


async def test_first_checkin_creates_a_row_with_streak_one(db, new_member):
    mid = await new_member()
    assert await record(db, mid, TODAY) == CheckinResult(created=True, streak=1, points=5)
    assert await checkin_rows(db, mid) == [(TODAY, 1, 5)]


async def test_consecutive_days_extend_the_streak(db, new_member):
    mid = await new_member()
    results = [await record(db, mid, TODAY + timedelta(days=i)) for i in range(8)]
    assert [(r.created, r.streak, r.points) for r in results] == [
        (True, 1, 5),
        (True, 2, 5),
        (True, 3, 10),
        (True, 4, 10),
        (True, 5, 15),
        (True, 6, 15),
        (True, 7, 30),
        (True, 8, 5),
    ]


async def test_a_missed_day_resets_the_streak_to_one(db, new_member):
    mid = await new_member()
    await record(db, mid, TODAY)
    await record(db, mid, TODAY + timedelta(days=1))
    assert await record(db, mid, TODAY + timedelta(days=3)) == CheckinResult(True, 1, 5)
    assert [streak for _, streak, _ in await checkin_rows(db, mid)] == [1, 2, 1]


async def test_second_checkin_the_same_day_returns_the_stored_streak_and_points(db, new_member):
    mid = await new_member()
    await record(db, mid, TODAY - timedelta(days=1))
    assert await record(db, mid, TODAY) == CheckinResult(True, 2, 5)
    again = await record(db, mid, TODAY, give=lambda _streak: 999)
    assert again == CheckinResult(created=False, streak=2, points=5)
    assert await checkin_rows(db, mid) == [(TODAY - timedelta(days=1), 1, 5), (TODAY, 2, 5)]


async def test_fifty_concurrent_checkins_for_one_day_create_exactly_one_row(db, new_member):
    mid = await new_member()
    await record(db, mid, TODAY - timedelta(days=1))  # so the winner's streak is 2

    async def attempt(i: int) -> CheckinResult:
        async with db.transaction() as session:  # each in its own transaction and connection
            return await checkins.record(session, mid, TODAY, START, lambda _s: 100 + i)

    results = await asyncio.gather(*(attempt(i) for i in range(50)))
    winners = [r for r in results if r.created]
    assert len(winners) == 1
    assert {(r.streak, r.points) for r in results} == {(2, winners[0].points)}
    assert await count(db, Checkin, Checkin.member_id == mid, Checkin.day == TODAY) == 1
    assert await checkin_rows(db, mid) == [
        (TODAY - timedelta(days=1), 1, 5),
        (TODAY, 2, winners[0].points),
    ]


async def test_members_check_in_independently(db, new_member):
    a, b = await new_member(), await new_member()
    await record(db, a, TODAY - timedelta(days=1))
    assert await record(db, a, TODAY) == CheckinResult(True, 2, 5)
    assert await record(db, b, TODAY) == CheckinResult(True, 1, 5)


async def test_current_streak_is_alive_today_and_yesterday_only(db, new_member):
    mid = await new_member()
    await record(db, mid, TODAY - timedelta(days=1))
    await record(db, mid, TODAY)
    async with db.sessions() as session:
        assert await checkins.current_streak(session, mid, TODAY) == 2
        assert await checkins.current_streak(session, mid, TODAY + timedelta(days=1)) == 2
        assert await checkins.current_streak(session, mid, TODAY + timedelta(days=2)) == 0
        last = await checkins.last(session, mid)
    assert last is not None and (last.day, last.streak, last.points) == (TODAY, 2, 5)


async def test_current_streak_of_a_member_who_never_checked_in_is_zero(db, new_member):
    mid = await new_member()
    async with db.sessions() as session:
        assert await checkins.current_streak(session, mid, TODAY) == 0
        assert await checkins.last(session, mid) is None


async def test_recount_streaks_recomputes_every_row_from_the_days(db, new_member):
    mid = await new_member()
    days = [TODAY, TODAY + timedelta(days=1), TODAY + timedelta(days=2), TODAY + timedelta(days=4)]
    for day in days:
        await record(db, mid, day)
    async with db.transaction() as session:  # as a merge leaves them: wrong stored streaks
        await session.execute(update(Checkin).where(Checkin.member_id == mid).values(streak=9))
    async with db.transaction() as session:
        await checkins.recount_streaks(session, mid)
    assert [(day, streak) for day, streak, _ in await checkin_rows(db, mid)] == [
        (days[0], 1),
        (days[1], 2),
        (days[2], 3),
        (days[3], 1),
    ]
    # Points already credited are history: recounting streaks leaves them alone.
    assert [pts for _, _, pts in await checkin_rows(db, mid)] == [5, 5, 10, 5]
