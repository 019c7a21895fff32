"""The activity roll-up: who acted last when, who came back after a quiet spell, and the
points moved per hour by kind, for the ledger entries created before `through`; the figures
read it and the ledger after `through`.

Why: "active", "churned", "won back" and retention group every member's entries of up to two
periods (millions of rows on a big programme); the roll-up answers them from one row per
member (and one per comeback), and only the entries since `through` (10 to 70 minutes of
them with the hourly job) are read live. The answers are exactly the ledger's:
storage/stats/activity.py falls back to the ledger alone when there is no roll-up or it does
not reach the period's start.

It grows by the hourly `stats` job (`advance`) over closed STEPs only (10 minutes: the
shorter the stretch after `through`, the less each request reads live): an entry is written
with its transaction's `now`, so one still uncommitted when its step closes could be missed;
`advance` stops LAG before the clock (whole steps), far longer than any transaction. The
points moved stay per hour: a step adds to its hour's row. Linking
accounts moves a member's entries (and check-ins) to another member: `refresh` rebuilds both
members' rows in the linking transaction. Erasure keeps the member's id, entries, check-ins
and tier: nothing changes.

Per member it also keeps the last check-in day and the last spend (`stats_members`, with the
member's tier now: a trigger on members.tier keeps that column, whoever writes the tier), so
the benefit figures per tier read an index range instead of joining a period's members with
every member.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, bindparam, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database, insert_ignoring, rowcount
from storage.models import StatsActivity, StatsComeback, StatsMember, StatsRollup
from storage.stats.window import Window

ACTIVITY = "activity"
ACTIVE_KINDS = ("earn", "spend")  # the member's own doing (see storage/stats/activity.py)
LAG = timedelta(minutes=10)
STEP = timedelta(minutes=10)  # `through` moves by whole steps (an hour divides into them)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_state: Table = StatsRollup.__table__  # type: ignore[assignment]
_TIME = StatsRollup.__table__.c.through.type
_CREATE = insert_ignoring(_state, ("name",), ("name",), "name")


def _gap(dialect: str) -> str:
    """SQL: x.at comes more than 23 hours after x.prev. Spells of a day or less can never
    make a member won back (periods are whole days), so they are left out."""
    if dialect == "postgresql":
        return "x.at - x.prev > interval '23 hours'"
    return "julianday(x.at) - julianday(x.prev) > 23.0 / 24.0"


def _hour(dialect: str) -> str:
    """SQL: the UTC hour an entry's created_at falls in (SQLite keeps naive UTC text)."""
    if dialect == "postgresql":
        return "date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    return "strftime('%Y-%m-%d %H:00:00.000000', created_at)"


def _hours_sql(dialect: str) -> str:
    """The points moved in each hour of [lo, hi), by kind (entries never change either)."""
    return (
        "INSERT INTO stats_ledger_hours (hour, kind, amount)"
        f" SELECT {_hour(dialect)}, kind, SUM(amount) FROM ledger_entries"
        " WHERE created_at >= :lo AND created_at < :hi"
        f" GROUP BY {_hour(dialect)}, kind"
        " ON CONFLICT (hour, kind)"
        " DO UPDATE SET amount = stats_ledger_hours.amount + excluded.amount"
    )


def _only(members: bool) -> str:
    return " AND e.member_id IN :ids" if members else ""


def _comebacks_sql(dialect: str, members: bool) -> str:
    """Entries of [lo, hi) after a quiet spell; the one before the first of them is the
    member's last activity in the roll-up (read before it moves on)."""
    return (
        "INSERT INTO stats_comebacks (member_id, at, quiet_since, joined_at)"
        " SELECT x.member_id, x.at, x.prev, m.created_at FROM ("
        "  SELECT e.member_id AS member_id, e.created_at AS at,"
        "   COALESCE(LAG(e.created_at) OVER (PARTITION BY e.member_id"
        "    ORDER BY e.created_at, e.id), a.last_active_at) AS prev"
        "  FROM ledger_entries e LEFT JOIN stats_activity a ON a.member_id = e.member_id"
        "  WHERE e.kind IN ('earn', 'spend') AND e.created_at >= :lo AND e.created_at < :hi"
        f"{_only(members)}"
        " ) x JOIN members m ON m.id = x.member_id"
        f" WHERE x.prev IS NULL OR {_gap(dialect)}"
        " ON CONFLICT (member_id, at) DO NOTHING"
    )


def _later(column: str) -> str:
    """SQL: the later of the row's `column` and the new one (NULL: none yet)."""
    old, new = f"stats_members.{column}", f"excluded.{column}"
    return f"CASE WHEN {old} IS NULL OR {new} > {old} THEN {new} ELSE {old} END"


def _checkin_day_sql(members: bool) -> str:
    """Each member's last check-in day among the check-ins created in [lo, hi) (a make-up
    check-in fills an earlier day: the later day stays). The tier is copied only when the
    row is new: after that the trigger on members.tier keeps it (see `StatsMember`)."""
    only = " AND c.member_id IN :ids" if members else ""
    return (
        "INSERT INTO stats_members (member_id, tier, last_checkin_day)"
        " SELECT c.member_id, m.tier, MAX(c.day)"
        " FROM checkins c JOIN members m ON m.id = c.member_id"
        f" WHERE c.created_at >= :lo AND c.created_at < :hi{only}"
        " GROUP BY c.member_id, m.tier"
        # In id order, as writers lock members: the job waits for a writer, never deadlocks one.
        " ORDER BY c.member_id"
        " ON CONFLICT (member_id)"
        f" DO UPDATE SET last_checkin_day = {_later('last_checkin_day')}"
    )


def _spend_sql(members: bool) -> str:
    """Each member's last spend of points in [lo, hi)."""
    return (
        "INSERT INTO stats_members (member_id, tier, last_spend_at)"
        " SELECT e.member_id, m.tier, MAX(e.created_at)"
        " FROM ledger_entries e JOIN members m ON m.id = e.member_id"
        " WHERE e.kind = 'spend' AND e.created_at >= :lo AND e.created_at < :hi"
        f"{_only(members)}"
        " GROUP BY e.member_id, m.tier"
        " ORDER BY e.member_id"
        f" ON CONFLICT (member_id) DO UPDATE SET last_spend_at = {_later('last_spend_at')}"
    )


def _last_sql(members: bool) -> str:
    """Each member's last activity of [lo, hi): later than any before `lo`."""
    return (
        "INSERT INTO stats_activity (member_id, joined_at, last_active_at)"
        " SELECT e.member_id, m.created_at, MAX(e.created_at)"
        " FROM ledger_entries e JOIN members m ON m.id = e.member_id"
        " WHERE e.kind IN ('earn', 'spend') AND e.created_at >= :lo AND e.created_at < :hi"
        f"{_only(members)}"
        " GROUP BY e.member_id, m.created_at"
        " ON CONFLICT (member_id) DO UPDATE SET last_active_at = excluded.last_active_at"
    )


async def _roll(
    session: AsyncSession, lo: datetime, hi: datetime, ids: Sequence[int] | None = None
) -> None:
    dialect = session.get_bind().dialect.name
    params: dict[str, object] = {"lo": lo, "hi": hi}
    binds = [bindparam("lo", type_=_TIME), bindparam("hi", type_=_TIME)]
    if ids is not None:
        params["ids"] = list(ids)
        binds.append(bindparam("ids", expanding=True))
    members = ids is not None
    statements = [
        _comebacks_sql(dialect, members),  # before _last_sql moves the last activity on
        _last_sql(members),
        _checkin_day_sql(members),
        _spend_sql(members),
    ]
    if not members:  # points per hour do not depend on whose they are
        statements.append(_hours_sql(dialect))
    for sql in statements:
        await session.execute(text(sql).bindparams(*binds), params)


async def through(session: AsyncSession) -> datetime | None:
    """Where the roll-up reaches (None: not built)."""
    stmt = select(StatsRollup.through).where(StatsRollup.name == ACTIVITY)
    return (await session.execute(stmt)).scalar_one_or_none()


async def reach_for(session: AsyncSession, window: Window) -> datetime | None:
    """`through` when the figures of `window` may use the roll-up: it reaches into the period
    (else the job has stalled, or the clock is behind it: the ledger alone answers)."""
    reach = await through(session)
    if reach is None or not window.start <= reach <= window.now:
        return None
    return reach


def target(now: datetime) -> datetime:
    """Where the roll-up may reach at `now`: the start of the STEP that was under way LAG
    ago (at 12:00 and until 12:09, 11:50)."""
    moment = (now - LAG).astimezone(UTC)
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour + (moment - hour) // STEP * STEP


async def advance(session: AsyncSession, now: datetime) -> int:
    """Roll the ledger up to `target(now)`; how many STEPs it moved (0: nothing to do, or
    another run moved it meanwhile). The conditional update of the state row comes first: it
    holds that row's lock on PostgreSQL (SQLite has one writer), so two runs never add the
    same entries, and a repeat finds nothing to do."""
    hi = target(now)
    await session.execute(_CREATE, {"name": ACTIVITY})  # the migration's, unless wiped
    old = await through(session)
    if old is not None and old >= hi:
        return 0
    if old is None:
        claimed = update(_state).where(_state.c.name == ACTIVITY, _state.c.through.is_(None))
    else:
        claimed = update(_state).where(_state.c.name == ACTIVITY, _state.c.through == old)
    if not rowcount(await session.execute(claimed.values(through=hi))):
        return 0
    await _roll(session, old or EPOCH, hi)
    return (hi - (old or hi)) // STEP or 1


TABLES = ("stats_activity", "stats_comebacks", "stats_members")  # what `advance` writes


async def tidy(db: Database) -> None:
    """PostgreSQL: VACUUM the roll-up's tables after `advance` committed. Each run updates
    rows scattered over their pages, which lose their all-visible mark; until a VACUUM sets
    it again the figures' index-only counts read a heap page per row (default autovacuum
    waits for a fifth of a table to change). Pages left all-visible are skipped: a few
    seconds at most on a million members."""
    if db.dialect != "postgresql":
        return
    async with db.reader() as session:  # autocommit: VACUUM runs outside a transaction
        await session.execute(text(f"VACUUM (ANALYZE) {', '.join(TABLES)}"))


async def refresh(session: AsyncSession, member_ids: Sequence[int]) -> None:
    """Rebuild these members' rows from their entries (after entries moved between them).
    Waits for a running `advance` (the state row's lock) so neither misses the other."""
    await session.execute(_CREATE, {"name": ACTIVITY})
    lock = update(_state).where(_state.c.name == ACTIVITY).values(through=_state.c.through)
    await session.execute(lock)
    reach = await through(session)
    ids = list(member_ids)
    await session.execute(delete(StatsComeback).where(StatsComeback.member_id.in_(ids)))
    await session.execute(delete(StatsActivity).where(StatsActivity.member_id.in_(ids)))
    # Their tier and communities stay (the triggers keep them); the days are rebuilt.
    blank = {"last_checkin_day": None, "last_spend_at": None}
    await session.execute(update(StatsMember).where(StatsMember.member_id.in_(ids)).values(**blank))
    if reach is not None:
        await _roll(session, EPOCH, reach, ids)
