"""The daily check-in in as few round trips as its invariants allow.

What it writes is what `handlers.checkin`'s general path writes (a check-in row, unique per
member and day; its ledger lot under the key `checkin:<member>:<day>`; the balance and growth
moved in step; the tier raised when growth crosses a threshold; streak badges), decided by
the same rules:

* PostgreSQL: ONE statement, run in autocommit (so no BEGIN/COMMIT round trips) and therefore
  atomic by itself. Its first step locks the member row; every write depends on that row
  (data dependencies fix the order), so nothing is written for a member merged away by a
  concurrent link, and the lock is the only one taken (no lock-order question with merges).
  The unique (member, day) key decides between concurrent check-ins: the loser's INSERT does
  nothing and so does everything that depends on it.
  READ COMMITTED takes the statement's snapshot BEFORE the lock is waited for: previous
  check-ins and the invite read from it would miss what the lock's holder committed (a
  make-up, a merge's days). The lock returns the member row's newest version; if its xmin is
  not the snapshot's, the row changed meanwhile and nothing is written; the statement runs
  once more (a fresh snapshot), and if it is stale again the outcome is `STALE` (the caller
  takes the general path, in a fresh transaction). This holds because every
  transaction that writes check-ins also UPDATEs the member row (a check-in moves growth;
  `storage.checkins.recount_streaks`, run by make-ups and merges, touches it on purpose).
* SQLite: one transaction (BEGIN IMMEDIATE ... COMMIT) run whole in the driver's thread, in one
  hop: the single writer connection is held for the SQL only, never across an await (holding
  it across the event loop's other work is what made check-ins queue).

A member whose invite waits for this first check-in is not handled here (`SLOW`): the
general path settles the invite and pays the inviter, locking both in the merge's order.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from storage.db import Database
from storage.errors import MemberMerged

CREATED, REPEAT, SLOW, CONFLICT = "created", "repeat", "slow", "conflict"
STALE = "stale"  # PostgreSQL: the member changed after the statement's snapshot; nothing written


@dataclass(frozen=True)
class Plan:
    """Everything the statement needs, computed once per process where it can be (the caller
    caches `rewards` per tier and kind of day)."""

    member_id: int
    day: date
    now: datetime
    rewards: tuple[int, ...]  # points for the streak's place in the schedule, (streak-1) % len
    growth: int
    expiry_days: int
    tier_names: tuple[str, ...]  # in rank order
    tier_thresholds: tuple[int, ...]
    streak_badges: tuple[int, ...]  # badge "streak_<n>" given at a streak of n
    waiting: str  # invites.WAITING

    @property
    def key(self) -> str:
        return f"checkin:{self.member_id}:{self.day.isoformat()}"


@dataclass(frozen=True)
class Outcome:
    status: str  # CREATED, REPEAT, SLOW / STALE (use the general path), CONFLICT (read winner)
    streak: int = 0
    points: int = 0
    balance: int = 0
    old_tier: str = ""
    new_tier: str = ""
    badges: tuple[str, ...] = ()


def _rank(names: tuple[str, ...], name: str) -> int:
    return names.index(name) if name in names else 0


def _earned(thresholds: tuple[int, ...], growth: int) -> int:
    return sum(1 for t in thresholds if growth >= t) - 1


# ----------------------------------------------------------------------------------- PostgreSQL

_PG = """
WITH m AS (
    SELECT id, tier, merged_into_id, xmin FROM members WHERE id = $1 FOR UPDATE
), snap AS (
    -- the member's row as the statement's snapshot sees it: `m` returns the newest version
    -- after waiting for the lock, so a different xmin means it changed meanwhile
    SELECT xmin FROM members WHERE id = $1
), gate AS (
    SELECT m.id FROM m
    WHERE m.merged_into_id IS NULL
      AND m.xmin = (SELECT xmin FROM snap)
      AND NOT EXISTS (SELECT 1 FROM invites WHERE invitee_id = $1 AND status = $9)
), prev AS (
    SELECT day, streak, points FROM checkins WHERE member_id = $1 ORDER BY day DESC LIMIT 1
), nxt AS (
    SELECT CASE WHEN prev.day = $2::date - 1 THEN prev.streak + 1 ELSE 1 END AS streak
    FROM gate LEFT JOIN prev ON true
    WHERE prev.day IS DISTINCT FROM $2
), ins AS (
    INSERT INTO checkins (member_id, day, streak, points, created_at)
    SELECT $1, $2, nxt.streak, ($4::bigint[])[(nxt.streak - 1) % cardinality($4::bigint[]) + 1], $3
    FROM nxt
    ON CONFLICT (member_id, day) DO NOTHING
    RETURNING streak, points
), entry AS (
    INSERT INTO ledger_entries
        (member_id, kind, amount, reason, idempotency_key, created_at, expires_at, remaining)
    SELECT $1, 'earn', ins.points, 'checkin', $5, $3, $6, ins.points FROM ins
    WHERE ins.points > 0  -- a day that pays nothing still counts; a lot of 0 is no lot
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING amount
), bump AS (
    UPDATE members SET
        points = members.points + COALESCE((SELECT amount FROM entry), 0),
        growth = GREATEST(members.growth + $7, 0),
        tier = COALESCE((
            -- the highest tier the new growth reaches, if it ranks above the one held
            SELECT name FROM unnest($8::text[], $10::bigint[]) WITH ORDINALITY AS t(name, low, n)
            WHERE low <= GREATEST(members.growth + $7, 0)
              AND n > COALESCE(array_position($8::text[], members.tier::text), 1)
            ORDER BY n DESC LIMIT 1
        ), members.tier)
    FROM ins
    WHERE members.id = $1
    RETURNING members.points, members.tier
), badge AS (
    INSERT INTO badges (member_id, badge, earned_at)
    SELECT $1, 'streak_' || d, $3 FROM ins, unnest($11::int[]) AS d WHERE ins.streak >= d
    ON CONFLICT (member_id, badge) DO NOTHING
    RETURNING badge
)
SELECT m.tier AS held, m.merged_into_id AS merged, EXISTS (SELECT 1 FROM gate) AS open,
       m.xmin = (SELECT xmin FROM snap) AS fresh,
       prev.day AS prev_day, prev.streak AS prev_streak, prev.points AS prev_points,
       ins.streak, ins.points, bump.points AS balance, bump.tier AS tier,
       ARRAY(SELECT badge FROM badge) AS badges
FROM m LEFT JOIN prev ON true LEFT JOIN ins ON true LEFT JOIN bump ON true
"""


async def _postgres(db: Database, plan: Plan) -> Outcome:
    expires = plan.now + timedelta(days=plan.expiry_days)
    args = (
        plan.member_id,
        plan.day,
        plan.now,
        list(plan.rewards),
        plan.key,
        expires,
        plan.growth,
        list(plan.tier_names),
        plan.waiting,
        list(plan.tier_thresholds),
        list(plan.streak_badges),
    )
    async with db.driver() as conn:
        # asyncpg's own prepared-statement cache: one Bind/Execute round trip per call.
        row = await conn.fetchrow(_PG, *args)
    if row is None:
        raise LookupError(f"no member {plan.member_id}")
    if row["merged"] is not None:
        raise MemberMerged(plan.member_id)
    if not row["fresh"]:
        return Outcome(STALE)
    if not row["open"]:
        return Outcome(SLOW)
    if row["prev_day"] == plan.day:
        return Outcome(REPEAT, row["prev_streak"], row["prev_points"])
    if row["streak"] is None:
        return Outcome(CONFLICT)
    given = tuple(row["badges"])
    return Outcome(
        CREATED,
        row["streak"],
        row["points"],
        int(row["balance"]),
        row["held"],
        row["tier"],
        tuple(f"streak_{n}" for n in plan.streak_badges if f"streak_{n}" in given),
    )


# ----------------------------------------------------------------------------------- SQLite


def _moment(value: datetime) -> str:
    """How SQLAlchemy stores storage.models.UTCDateTime on SQLite (naive UTC, microseconds)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _sqlite_work(conn: sqlite3.Connection, plan: Plan) -> Outcome:
    """The whole transaction, in the driver's thread (the connection is in autocommit mode:
    storage.db takes control of BEGIN)."""
    mid = plan.member_id
    now = _moment(plan.now)
    conn.execute("BEGIN IMMEDIATE")
    try:
        outcome = _sqlite_steps(conn, plan, mid, now)
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (a full disk, an I/O error) leaves the transaction open: on the one
        # writer connection every later BEGIN IMMEDIATE would fail. The first error is the one
        # to raise; a rollback that fails too is left to storage.db's reset on return.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return outcome


def _sqlite_steps(conn: sqlite3.Connection, plan: Plan, mid: int, now: str) -> Outcome:
    member = conn.execute(
        "SELECT tier, growth, merged_into_id, "
        "EXISTS (SELECT 1 FROM invites WHERE invitee_id = ?1 AND status = ?2) "
        "FROM members WHERE id = ?1",
        (mid, plan.waiting),
    ).fetchone()
    if member is None:
        raise LookupError(f"no member {mid}")
    held, growth, merged, waiting = member
    if merged is not None:
        raise MemberMerged(mid)
    if waiting:
        return Outcome(SLOW)
    prev = conn.execute(
        "SELECT day, streak, points FROM checkins WHERE member_id = ? ORDER BY day DESC LIMIT 1",
        (mid,),
    ).fetchone()
    today = plan.day.isoformat()
    if prev is not None and prev[0] == today:
        return Outcome(REPEAT, prev[1], prev[2])
    yesterday = (plan.day - timedelta(1)).isoformat()
    streak = prev[1] + 1 if prev is not None and prev[0] == yesterday else 1
    points = plan.rewards[(streak - 1) % len(plan.rewards)]
    # The one writer makes a conflict impossible here; kept as the same guard as PostgreSQL's.
    if (
        conn.execute(
            "INSERT INTO checkins (member_id, day, streak, points, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (member_id, day) DO NOTHING RETURNING id",
            (mid, today, streak, points, now),
        ).fetchone()
        is None
    ):
        return Outcome(CONFLICT)
    entry = None  # a day that pays nothing still counts; a lot of 0 is no lot
    if points > 0:
        expires = _moment(plan.now + timedelta(days=plan.expiry_days))
        entry = conn.execute(
            "INSERT INTO ledger_entries (member_id, kind, amount, reason, idempotency_key, "
            "created_at, expires_at, remaining) VALUES (?, 'earn', ?, 'checkin', ?, ?, ?, ?) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING amount",
            (mid, points, plan.key, now, expires, points),
        ).fetchone()
    grown = max(growth + plan.growth, 0)
    names = plan.tier_names
    earned = _earned(plan.tier_thresholds, grown)
    tier = names[earned] if earned > _rank(names, held) else held
    balance = conn.execute(
        "UPDATE members SET points = points + ?, growth = ?, tier = ? WHERE id = ? "
        "RETURNING points",
        (points if entry is not None else 0, grown, tier, mid),
    ).fetchone()[0]
    given = []
    for n in plan.streak_badges:
        if streak >= n:
            row = conn.execute(
                "INSERT INTO badges (member_id, badge, earned_at) VALUES (?, ?, ?) "
                "ON CONFLICT (member_id, badge) DO NOTHING RETURNING id",
                (mid, f"streak_{n}", now),
            ).fetchone()
            if row is not None:
                given.append(f"streak_{n}")
    return Outcome(CREATED, streak, points, int(balance), held, tier, tuple(given))


async def _sqlite(db: Database, plan: Plan) -> Outcome:
    async with db.driver() as driver:  # aiosqlite
        # aiosqlite runs each call in its connection's thread; `_execute` runs our function
        # there whole (aiosqlite has no public name for it), `_conn` is its sqlite3 connection.
        outcome: Outcome = await driver._execute(_sqlite_work, driver._conn, plan)
        return outcome


async def check_in(db: Database, plan: Plan) -> Outcome:
    """Record today's check-in for `plan.member_id` (see the module's docstring)."""
    if db.dialect == "sqlite":
        return await _sqlite(db, plan)
    done = await _postgres(db, plan)
    if done.status == STALE:
        # Once more, with a snapshot taken after the lock's holder committed (most often a
        # concurrent check-in of the same member: this one is then a repeat). Stale again:
        # the caller takes the general path.
        done = await _postgres(db, plan)
    return done
