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

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from storage import hot, outbox
from storage.db import Database, sqlite_immediate
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
    # The account the message came from: it must still belong to the member (the caller's
    # member may be what this process knew of the account, not a lookup): else MemberMerged.
    account: tuple[str, str] | None = None
    # `rewards` by the member's tier (in `tier_names`' order) and birthday, as the locked
    # row has them: [(rank * 2 + is_birthday) * len(rewards) + place]; empty: `rewards` for all.
    by_tier: tuple[int, ...] = ()
    birthdays: tuple[str, ...] = ()  # "MM-DD" birthdays that are today (02-29 on a 02-28)

    @property
    def key(self) -> str:
        return f"checkin:{self.member_id}:{self.day.isoformat()}"

    @property
    def table(self) -> tuple[int, ...]:
        return self.by_tier or self.rewards * (2 * max(1, len(self.tier_names)))

    def reward(self, tier: str, birthday: str | None, streak: int) -> int:
        """What `_PG` computes: the day's points for this streak, by tier and birthday."""
        n = len(self.rewards)
        bday = 1 if birthday is not None and birthday in self.birthdays else 0
        return self.table[(_rank(self.tier_names, tier) * 2 + bday) * n + (streak - 1) % n]


@dataclass(frozen=True)
class Outcome:
    status: str  # CREATED, REPEAT, SLOW / STALE (use the general path), CONFLICT (read winner)
    streak: int = 0
    points: int = 0
    balance: int = 0
    old_tier: str = ""
    new_tier: str = ""
    badges: tuple[str, ...] = ()
    # The member as the locked row has it (tier held before, birthday, language); None for
    # SLOW and STALE. Not compared: it is what the reply is made from, not what was done.
    row: Member | None = field(default=None, compare=False)
    # Whether a push waits in the outbox for the account's chat (`Plan.account`), held until
    # the person writes (None: not asked; SQLite, where the cache's mark costs nothing).
    pushes_held: bool | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Member:
    """What a reply needs of the member, read under the lock (storage/members.py's cache may
    have handed the caller an older picture)."""

    tier: str
    birthday: str | None
    locale: str | None


def _rank(names: tuple[str, ...], name: str) -> int:
    return names.index(name) if name in names else 0


def _earned(thresholds: tuple[int, ...], growth: int) -> int:
    return sum(1 for t in thresholds if growth >= t) - 1


# ----------------------------------------------------------------------------------- PostgreSQL

# The rules' part (rewards, tiers, badges, growth: the same for every member on a day) is
# written into the statement as constants: asyncpg encoded those arrays, ~90 elements, on
# every call. One text per rules and day, prepared once per connection (asyncpg's cache).
_PG = """
WITH m AS (
    SELECT id, tier, birthday, locale, merged_into_id, xmin FROM members WHERE id = $1 FOR UPDATE
), snap AS (
    -- the member's row as the statement's snapshot sees it: `m` returns the newest version
    -- after waiting for the lock, so a different xmin means it changed meanwhile
    SELECT xmin FROM members WHERE id = $1
), own AS (
    -- the account still belongs to this member (not linked to another, not erased)
    SELECT $6::text IS NULL OR EXISTS (
        SELECT 1 FROM identities WHERE channel = $6 AND external_id = $7 AND member_id = $1
    ) AS owned
), gate AS (
    -- where the day's rewards start in the table for the member's tier and birthday
    SELECT ((COALESCE(array_position({names}, m.tier::text), 1) - 1) * 2
            + COALESCE(m.birthday = ANY({birthdays}), false)::int) * {places} AS base
    FROM m
    WHERE m.merged_into_id IS NULL
      AND m.xmin = (SELECT xmin FROM snap)
      AND (SELECT owned FROM own)
      AND NOT EXISTS (SELECT 1 FROM invites WHERE invitee_id = $1 AND status = {waiting})
), prev AS (
    SELECT day, streak, points FROM checkins WHERE member_id = $1 ORDER BY day DESC LIMIT 1
), nxt AS (
    SELECT CASE WHEN prev.day = $2::date - 1 THEN prev.streak + 1 ELSE 1 END AS streak, gate.base
    FROM gate LEFT JOIN prev ON true
    WHERE prev.day IS DISTINCT FROM $2
), ins AS (
    INSERT INTO checkins (member_id, day, streak, points, created_at)
    SELECT $1, $2, nxt.streak, ({table})[nxt.base + (nxt.streak - 1) % {places} + 1], $3
    FROM nxt
    ON CONFLICT (member_id, day) DO NOTHING
    RETURNING streak, points
), entry AS (
    INSERT INTO ledger_entries
        (member_id, kind, amount, reason, idempotency_key, created_at, expires_at, remaining)
    SELECT $1, 'earn', ins.points, 'checkin', $4, $3, $5, ins.points FROM ins
    WHERE ins.points > 0  -- a day that pays nothing still counts; a lot of 0 is no lot
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING amount
), bump AS (
    UPDATE members SET
        points = members.points + COALESCE((SELECT amount FROM entry), 0),
        growth = GREATEST(members.growth + {growth}, 0),
        tier = COALESCE((
            -- the highest tier the new growth reaches, if it ranks above the one held
            SELECT name FROM unnest({names}, {thresholds}) WITH ORDINALITY AS t(name, low, n)
            WHERE low <= GREATEST(members.growth + {growth}, 0)
              AND n > COALESCE(array_position({names}, members.tier::text), 1)
            ORDER BY n DESC LIMIT 1
        ), members.tier)
    FROM ins
    WHERE members.id = $1
    RETURNING members.points, members.tier
), badge AS (
    INSERT INTO badges (member_id, badge, earned_at)
    SELECT $1, 'streak_' || d, $3 FROM ins, unnest({badges}) AS d WHERE ins.streak >= d
    ON CONFLICT (member_id, badge) DO NOTHING
    RETURNING badge
)
SELECT m.tier AS held, m.birthday, m.locale, m.merged_into_id AS merged,
       $6::text IS NOT NULL AND EXISTS (
           SELECT 1 FROM outbox WHERE channel = $6 AND chat_id = $7 AND state = {held_push}
       ) AS pushes_held,
       (SELECT owned FROM own) AS owned, EXISTS (SELECT 1 FROM gate) AS open,
       m.xmin = (SELECT xmin FROM snap) AS fresh,
       prev.day AS prev_day, prev.streak AS prev_streak, prev.points AS prev_points,
       ins.streak, ins.points, bump.points AS balance, bump.tier AS tier,
       ARRAY(SELECT badge FROM badge) AS badges
FROM m LEFT JOIN prev ON true LEFT JOIN ins ON true LEFT JOIN bump ON true
"""


def _array(values: tuple[int, ...] | tuple[str, ...], kind: str) -> str:
    if kind == "text":
        items = ", ".join(_text(str(v)) for v in values)
    else:
        items = ", ".join(str(int(v)) for v in values)
    return f"ARRAY[{items}]::{kind}[]"


class NoSuchMember(LookupError):
    """The member given is not in the database (one a process remembered, the database
    restored under it)."""


def _text(value: str) -> str:
    # An E'' literal reads backslashes the same whatever standard_conforming_strings says.
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


_TEXTS: dict[tuple[object, ...], str] = {}


def _statement(plan: Plan) -> str:
    """`_PG` with this plan's constants in it."""
    key = (
        plan.table,
        plan.tier_names,
        plan.tier_thresholds,
        plan.streak_badges,
        plan.birthdays,
        plan.waiting,
        plan.growth,
        len(plan.rewards),
    )
    text = _TEXTS.get(key)
    if text is None:
        text = _PG.format(
            table=_array(plan.table, "bigint"),
            names=_array(plan.tier_names, "text"),
            thresholds=_array(plan.tier_thresholds, "bigint"),
            badges=_array(plan.streak_badges, "int"),
            birthdays=_array(plan.birthdays, "text"),
            places=len(plan.rewards),
            waiting=_text(plan.waiting),
            held_push=_text(outbox.HELD),
            growth=int(plan.growth),
        )
        if len(_TEXTS) > 64:
            _TEXTS.clear()
        _TEXTS[key] = text
    return text


async def _postgres(db: Database, plan: Plan) -> Outcome:
    channel, external_id = plan.account or (None, None)
    async with hot.driver(db) as conn:
        # asyncpg's own prepared-statement cache: one Bind/Execute round trip per call.
        row = await conn.fetchrow(
            _statement(plan),
            plan.member_id,
            plan.day,
            plan.now,
            plan.key,
            plan.now + timedelta(days=plan.expiry_days),
            channel,
            external_id,
        )
    if row is None:
        raise NoSuchMember(f"no member {plan.member_id}")
    if row["merged"] is not None:
        raise MemberMerged(plan.member_id)
    if not row["fresh"]:
        return Outcome(STALE)
    if not row["owned"]:  # linked to another member, or erased, since the caller's lookup
        raise MemberMerged(plan.member_id)
    if not row["open"]:
        return Outcome(SLOW)
    held, pushes = Member(row["held"], row["birthday"], row["locale"]), row["pushes_held"]
    if row["prev_day"] == plan.day:
        return Outcome(REPEAT, row["prev_streak"], row["prev_points"], row=held, pushes_held=pushes)
    if row["streak"] is None:
        return Outcome(CONFLICT, row=held, pushes_held=pushes)
    given = tuple(row["badges"])
    return Outcome(
        CREATED,
        row["streak"],
        row["points"],
        int(row["balance"]),
        held.tier,
        row["tier"],
        tuple(f"streak_{n}" for n in plan.streak_badges if f"streak_{n}" in given),
        held,
        pushes,
    )


# ----------------------------------------------------------------------------------- SQLite


def _moment(value: datetime) -> str:
    """How SQLAlchemy stores storage.models.UTCDateTime on SQLite (naive UTC, microseconds)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _sqlite_work(conn: sqlite3.Connection, plan: Plan) -> Outcome:
    """The whole transaction, in the driver's thread."""
    now = _moment(plan.now)
    return sqlite_immediate(conn, lambda c: _sqlite_steps(c, plan, plan.member_id, now))


def _sqlite_steps(conn: sqlite3.Connection, plan: Plan, mid: int, now: str) -> Outcome:
    channel, external_id = plan.account or (None, None)
    member = conn.execute(
        "SELECT tier, growth, merged_into_id, birthday, locale, "
        "EXISTS (SELECT 1 FROM invites WHERE invitee_id = ?1 AND status = ?2), "
        "?3 IS NULL OR EXISTS (SELECT 1 FROM identities "
        "WHERE channel = ?3 AND external_id = ?4 AND member_id = ?1) "
        "FROM members WHERE id = ?1",
        (mid, plan.waiting, channel, external_id),
    ).fetchone()
    if member is None:
        raise NoSuchMember(f"no member {mid}")
    held, growth, merged, birthday, locale, waiting, owned = member
    if merged is not None or not owned:  # linked to another member, or erased
        raise MemberMerged(mid)
    if waiting:
        return Outcome(SLOW)
    prev = conn.execute(
        "SELECT day, streak, points FROM checkins WHERE member_id = ? ORDER BY day DESC LIMIT 1",
        (mid,),
    ).fetchone()
    today = plan.day.isoformat()
    seen = Member(held, birthday, locale)
    if prev is not None and prev[0] == today:
        return Outcome(REPEAT, prev[1], prev[2], row=seen)
    yesterday = (plan.day - timedelta(1)).isoformat()
    streak = prev[1] + 1 if prev is not None and prev[0] == yesterday else 1
    points = plan.reward(held, birthday, streak)
    # The one writer makes a conflict impossible here; kept as the same guard as PostgreSQL's.
    if (
        conn.execute(
            "INSERT INTO checkins (member_id, day, streak, points, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (member_id, day) DO NOTHING RETURNING id",
            (mid, today, streak, points, now),
        ).fetchone()
        is None
    ):
        return Outcome(CONFLICT, row=seen)
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
    return Outcome(CREATED, streak, points, int(balance), held, tier, tuple(given), seen)


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
