"""storage.checkin_fast on both backends: what one statement (PostgreSQL) or one thread hop
(SQLite) writes reads back as the ORM writes it, and it refuses what the general path handles."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import exc, select, update

from storage import checkin_fast, checkins, invites, ledger, makeup, members
from storage.checkin_fast import Outcome, Plan
from storage.db import Database
from storage.errors import MemberMerged
from storage.models import Badge, Checkin, Invite, LedgerEntry, Member
from tests.conftest import START

TODAY = START.date()
NAMES, THRESHOLDS = ("bronze", "silver", "gold"), (0, 500, 2000)


def plan(member_id: int, day=TODAY, growth=10) -> Plan:
    now = START + timedelta(days=(day - TODAY).days)
    return Plan(member_id, day, now, (5, 5, 10), growth, 30, NAMES, THRESHOLDS, (2, 3), "waiting")


async def test_a_checkin_writes_row_lot_balance_and_growth(db, new_member):
    mid = await new_member()

    done = await checkin_fast.check_in(db, plan(mid))

    assert done == Outcome("created", 1, 5, 5, "bronze", "bronze", ())
    async with db.reader() as session:
        entry = (await session.execute(select(LedgerEntry))).scalar_one()
        row = (await session.execute(select(Checkin))).scalar_one()
        member = await session.get(Member, mid)
    assert (entry.kind, entry.amount, entry.remaining, entry.reason) == ("earn", 5, 5, "checkin")
    assert entry.idempotency_key == f"checkin:{mid}:{TODAY.isoformat()}"
    assert (entry.created_at, entry.expires_at) == (START, START + timedelta(days=30))
    assert (row.day, row.streak, row.points, row.created_at) == (TODAY, 1, 5, START)
    assert member is not None
    assert (member.points, member.growth, member.tier) == (5, 10, "bronze")


async def test_the_same_day_twice_is_a_repeat_that_writes_nothing(db, new_member):
    mid = await new_member()
    await checkin_fast.check_in(db, plan(mid))

    again = await checkin_fast.check_in(db, plan(mid))

    assert again == Outcome("repeat", 1, 5)
    async with db.reader() as session:
        assert (await session.get(Member, mid)).points == 5  # type: ignore[union-attr]


async def test_streak_schedule_badges_and_tier_upgrade(db, new_member):
    mid = await new_member()
    days = [await checkin_fast.check_in(db, plan(mid, TODAY + timedelta(i), 200)) for i in range(4)]

    assert [(d.streak, d.points, d.balance) for d in days] == [
        (1, 5, 5),
        (2, 5, 10),
        (3, 10, 20),
        (4, 5, 25),
    ]
    assert [d.badges for d in days] == [(), ("streak_2",), ("streak_3",), ()]
    assert [(d.old_tier, d.new_tier) for d in days][2:] == [
        ("bronze", "silver"),
        ("silver", "silver"),
    ]
    async with db.reader() as session:
        held = (await session.execute(select(Badge.badge).where(Badge.member_id == mid))).scalars()
        assert sorted(held) == ["streak_2", "streak_3"]
        assert (await session.get(Member, mid)).growth == 800  # type: ignore[union-attr]


async def test_a_missed_day_restarts_the_streak(db, new_member):
    mid = await new_member()
    await checkin_fast.check_in(db, plan(mid))
    done = await checkin_fast.check_in(db, plan(mid, TODAY + timedelta(2)))
    assert (done.streak, done.points, done.balance) == (1, 5, 10)


async def test_a_waiting_invite_goes_the_general_way_and_writes_nothing(db, new_member):
    inviter, mid = await new_member(), await new_member()
    async with db.transaction() as session:
        session.add(
            Invite(
                inviter_id=inviter,
                invitee_id=mid,
                status=invites.WAITING,
                via="code",
                created_at=START,
            )
        )

    assert (await checkin_fast.check_in(db, plan(mid))).status == "slow"
    async with db.reader() as session:
        assert (await session.execute(select(Checkin))).first() is None


async def test_a_merged_member_is_refused_and_credited_nothing(db, new_member):
    survivor, mid = await new_member(), await new_member()
    async with db.transaction() as session:
        await session.execute(
            update(Member).where(Member.id == mid).values(merged_into_id=survivor)
        )

    with pytest.raises(MemberMerged):
        await checkin_fast.check_in(db, plan(mid))
    async with db.reader() as session:
        assert (await session.execute(select(LedgerEntry))).first() is None


async def test_fifty_at_once_credit_once_and_tell_the_rest_it_is_done(db, new_member):
    mid = await new_member()

    done = await asyncio.gather(*(checkin_fast.check_in(db, plan(mid)) for _ in range(50)))

    # A loser either saw the winner's row (repeat) or lost the unique key (conflict).
    assert sorted(d.status for d in done).count("created") == 1
    assert {d.status for d in done} <= {"created", "repeat", "conflict"}
    async with db.reader() as session:
        assert (await session.get(Member, mid)).points == 5  # type: ignore[union-attr]
        assert await ledger.ledger_sum(session, mid) == 5
        assert len((await session.execute(select(Checkin))).all()) == 1


async def test_a_later_day_already_recorded_does_not_stop_todays(db, new_member):
    """As the general path: the last row being a later day (a clock set back) does not count as
    today's check-in."""
    mid = await new_member()
    await checkin_fast.check_in(db, plan(mid, TODAY + timedelta(1)))

    done = await checkin_fast.check_in(db, plan(mid))

    assert (done.status, done.streak, done.balance) == ("created", 1, 10)


async def _days(db, mid: int) -> list[tuple[object, int]]:
    async with db.reader() as session:
        rows = await session.execute(
            select(Checkin.day, Checkin.streak)
            .where(Checkin.member_id == mid)
            .order_by(Checkin.day)
        )
        return [(day, streak) for day, streak in rows]


async def _while_held(db, hold, mid: int) -> Outcome:
    """Run today's fast check-in while another transaction, holding the member's lock, writes
    check-in rows (`hold`) and commits half a second later: the check-in waits for the lock."""
    held = asyncio.Event()

    async def holder() -> None:
        async with db.transaction() as session:
            await hold(session)
            held.set()
            await asyncio.sleep(0.5)

    task = asyncio.create_task(holder())
    await held.wait()
    if db.dialect == "sqlite":  # the writer's queue: it waits, then reads afresh
        done = await checkin_fast.check_in(db, plan(mid))
        await task
        return done
    # PostgreSQL: the statement's snapshot predates the holder's rows: it writes nothing and
    # says so; check_in() then runs it once more, with a fresh snapshot.
    stale = await checkin_fast._postgres(db, plan(mid))
    await task
    assert stale == Outcome(checkin_fast.STALE)
    assert len(await _days(db, mid)) == 2
    return await checkin_fast.check_in(db, plan(mid))


async def test_a_checkin_waiting_behind_a_makeup_counts_the_made_up_day(db, new_member):
    mid = await new_member()
    await checkin_fast.check_in(db, plan(mid, TODAY - timedelta(2)))

    async def make_up(session) -> None:
        await ledger.lock_member(session, mid)
        await makeup.fill(session, mid, TODAY - timedelta(1), TODAY, START)

    done = await _while_held(db, make_up, mid)

    assert (done.status, done.streak, done.points) == ("created", 3, 10)
    assert await _days(db, mid) == [
        (TODAY - timedelta(2), 1),
        (TODAY - timedelta(1), 2),
        (TODAY, 3),
    ]


async def test_a_checkin_waiting_behind_a_merge_counts_the_merged_days(db, new_member):
    survivor, other = await new_member(), await new_member()
    await checkin_fast.check_in(db, plan(survivor, TODAY - timedelta(2)))
    await checkin_fast.check_in(db, plan(other, TODAY - timedelta(1)))

    async def merge(session) -> None:
        await invites.lock_for_merge(session, survivor, other)
        await members.merge(session, survivor, other)
        await checkins.recount_streaks(session, survivor)

    done = await _while_held(db, merge, survivor)

    assert (done.status, done.streak, done.points) == ("created", 3, 10)
    assert await _days(db, survivor) == [
        (TODAY - timedelta(2), 1),
        (TODAY - timedelta(1), 2),
        (TODAY, 3),
    ]


class _Failing:
    """A sqlite3 connection whose COMMIT (and, if asked, ROLLBACK) fails, as a full disk or an
    I/O error would make them: the transaction stays open on the one writer connection."""

    def __init__(self, conn: sqlite3.Connection, *, rollback_fails: bool = False) -> None:
        self.conn, self.rollback_fails = conn, rollback_fails

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("disk I/O error")
        if sql == "ROLLBACK" and self.rollback_fails:
            raise sqlite3.OperationalError("cannot rollback")
        return self.conn.execute(sql, *args)


async def _fast_on(db, conn_for, member_id: int) -> Outcome:
    async with db.driver() as driver:
        outcome: Outcome = await driver._execute(
            checkin_fast._sqlite_work, conn_for(driver._conn), plan(member_id)
        )
        return outcome


@pytest.mark.parametrize("rollback_fails", [False, True])
async def test_sqlite_a_failed_commit_leaves_no_transaction_open(db, new_member, rollback_fails):
    """The writer connection is the only one: a transaction left open on it would make every
    later BEGIN IMMEDIATE fail until a restart. The commit's error is the one raised; a
    rollback that fails too is left to the pool's reset on return."""
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL's fast path is one autocommit statement")
    mid = await new_member()

    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        await _fast_on(db, lambda conn: _Failing(conn, rollback_fails=rollback_fails), mid)

    done = await checkin_fast.check_in(db, plan(mid))
    assert (done.status, done.streak, done.balance) == ("created", 1, 5)
    async with db.reader() as session:
        assert await ledger.ledger_sum(session, mid) == 5
        assert len((await session.execute(select(Checkin))).all()) == 1


async def test_sqlite_a_turn_waited_for_too_long_fails_as_the_pool_would(backend, new_member):
    """The FIFO queue in front of SQLite's pool keeps the pool's timeout: a writer held past it
    makes the next one fail with the pool's own error instead of waiting for ever."""
    if not backend[0].startswith("sqlite"):
        pytest.skip("PostgreSQL's pool has no queue in front of it")
    db = Database(backend[0], pool_timeout=0.1)
    try:
        async with db.transaction():
            with pytest.raises(exc.TimeoutError, match=r"timed out, timeout 0\.10"):
                await asyncio.wait_for(checkin_fast.check_in(db, plan(1)), 5)
    finally:
        await db.close()


async def test_a_reward_of_zero_counts_the_day_and_writes_no_entry(db, new_member):
    mid = await new_member()
    zero = Plan(mid, TODAY, START, (0, 5), 10, 30, NAMES, THRESHOLDS, (2, 3), "waiting")

    done = await checkin_fast.check_in(db, zero)

    assert done == Outcome("created", 1, 0, 0, "bronze", "bronze", ())
    async with db.reader() as session:
        assert (await session.execute(select(LedgerEntry))).first() is None
        row = (await session.execute(select(Checkin))).scalar_one()
        member = await session.get(Member, mid)
    assert (row.day, row.streak, row.points) == (TODAY, 1, 0)
    assert member is not None
    assert (member.points, member.growth) == (0, 10)
    tomorrow = await checkin_fast.check_in(db, plan(mid, TODAY + timedelta(1)))
    assert (tomorrow.streak, tomorrow.points, tomorrow.balance) == (2, 5, 5)
