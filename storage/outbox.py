"""The durable outbox: every push the bot makes on its own, one row each.

A row is written in the same transaction as its cause (a rolled-back cause leaves no push) and
is unique by its dedupe key (a cause repeated pushes once). Senders claim due rows with a short
lease, send, and mark the outcome at once: delivery is at least once, and only a push sent but
not yet marked when its sender died can go out twice.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database, insert_ignoring, rowcount, sqlite_immediate
from storage.models import OutboxPush

PENDING, HELD, SENT, FAILED = "pending", "held", "sent", "failed"
# GET /api/outbox shows three states: a held push is still waiting to go out.
PUBLIC_STATE = {PENDING: PENDING, HELD: PENDING, SENT: SENT, FAILED: FAILED}
SEND, POST, EDIT = "send", "post", "edit"

_outbox: Table = OutboxPush.__table__  # type: ignore[assignment]
_COLUMNS = (
    "dedupe_key",
    "channel",
    "chat_id",
    "member_id",
    "kind",
    "mode",
    "edit_of",
    "marketing",
    "quiet",
    "payload",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
)
_INSERT = insert_ignoring(_outbox, _COLUMNS, ("dedupe_key",), "id")


@dataclass(frozen=True)
class Target:
    """Where a push goes: a person's private chat (`send`) or a group chat (`post`)."""

    channel: str
    chat_id: str
    member_id: int | None = None
    mode: str = SEND


@dataclass(frozen=True, slots=True)
class Push:
    """A claimed row, as its sender needs it; `attempts` (this one included) is the lease's
    token: marks made with a stale token (the lease ran out and another sender took it) fail."""

    id: int
    channel: str
    chat_id: str
    member_id: int | None
    kind: str
    mode: str
    edit_of: int | None
    marketing: bool
    quiet: bool
    payload: dict[str, Any]
    attempts: int
    hold_until: datetime | None


async def enqueue(
    session: AsyncSession,
    key: str,
    target: Target,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    *,
    marketing: bool = False,
    quiet: bool = False,
    not_before: datetime | None = None,
    edit_of: int | None = None,
) -> int | None:
    """Add a push in the caller's transaction; None when `key` was used already (no change).

    `edit_of` is for enqueue_edit: the row whose sent message this one edits.
    """
    values = {
        "dedupe_key": key[:160],
        "channel": target.channel,
        "chat_id": target.chat_id,
        "member_id": target.member_id,
        "kind": kind,
        "mode": target.mode,
        "edit_of": edit_of,
        "marketing": marketing,
        "quiet": quiet,
        "payload": payload,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
        "updated_at": now,
    }
    return (await session.execute(_INSERT, values)).scalar_one_or_none()


async def enqueue_edit(
    session: AsyncSession, key: str, of_id: int, payload: dict[str, Any], now: datetime
) -> int | None:
    """Change what an earlier push says (a live counter); returns the row that will carry it.

    Not sent yet: the earlier push itself takes the new text. An edit of it still waiting:
    that edit takes the new text (a counter never queues stale edits). Otherwise a new edit
    row, sent once the earlier push has its message id. None: no such push, or `key` used.
    """
    if await _replace_payload(session, _outbox.c.id == of_id, payload, now):
        return of_id
    waiting = and_(_outbox.c.edit_of == of_id, _outbox.c.mode == EDIT)
    replaced = await _replace_payload(session, waiting, payload, now)
    if replaced:
        return replaced
    original = await session.get(OutboxPush, of_id)
    if original is None:
        return None
    target = Target(original.channel, original.chat_id, original.member_id, EDIT)
    return await enqueue(
        session,
        key,
        target,
        original.kind,
        payload,
        now,
        marketing=original.marketing,
        edit_of=of_id,
    )


async def _replace_payload(
    session: AsyncSession, which: Any, payload: dict[str, Any], now: datetime
) -> int | None:
    """Give a waiting row (pending or held, not leased to a sender) a new payload."""
    free = or_(_outbox.c.leased_until.is_(None), _outbox.c.leased_until <= now)
    stmt = (
        update(_outbox)
        .where(which, _outbox.c.state.in_((PENDING, HELD)), free)
        .values(payload=payload, updated_at=now)
        .returning(_outbox.c.id)
    )
    return (await session.execute(stmt)).scalars().first()


async def claim(
    session: AsyncSession,
    now: datetime,
    *,
    lease: timedelta,
    limit: int,
    channels: frozenset[str] | None = None,
) -> list[Push]:
    """Take up to `limit` due pushes for `lease`, oldest due first; counts an attempt each.

    PostgreSQL skips rows another sender has locked, so concurrent claimers never share a
    row; SQLite runs one writer at a time, which gives the same. A sender claims only the
    channels it can send on (`channels`): the others' pushes wait for a process that can.
    """
    due = [_outbox.c.state == PENDING, _outbox.c.next_attempt_at <= now]
    if channels is not None:
        due.append(_outbox.c.channel.in_(sorted(channels)))
    picked = (
        select(_outbox.c.id)
        .where(*due)
        .order_by(_outbox.c.next_attempt_at, _outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    until = now + lease
    stmt = (
        update(_outbox)
        .where(_outbox.c.id.in_(picked))
        .values(
            attempts=_outbox.c.attempts + 1,
            leased_until=until,
            next_attempt_at=until,
            updated_at=now,
        )
        .returning(*(_outbox.c[name] for name in Push.__dataclass_fields__))
    )
    rows = (await session.execute(stmt)).all()
    return sorted((Push(**row._mapping) for row in rows), key=lambda p: p.id)


def _mine(push: Push) -> Any:
    """The row is still this sender's: pending, with the attempt count it claimed."""
    return and_(
        _outbox.c.id == push.id, _outbox.c.attempts == push.attempts, _outbox.c.state == PENDING
    )


async def _settle(session: AsyncSession, push: Push, **values: Any) -> bool:
    stmt = update(_outbox).where(_mine(push)).values(leased_until=None, **values)
    return rowcount(await session.execute(stmt)) == 1


async def mark_sent(
    session: AsyncSession, push: Push, now: datetime, message_id: str | None
) -> bool:
    """It went out; `message_id` is kept for later edits. False: the lease was lost."""
    return await _settle(
        session, push, state=SENT, sent_at=now, updated_at=now, message_id=message_id
    )


async def retry(
    session: AsyncSession,
    push: Push,
    now: datetime,
    at: datetime,
    reason: str,
    *,
    counts: bool = True,
) -> bool:
    """Try again at `at`. `counts=False`: the attempt is given back (rate limit, quiet hours)."""
    attempts = _outbox.c.attempts if counts else _outbox.c.attempts - 1
    return await _settle(
        session,
        push,
        next_attempt_at=at,
        updated_at=now,
        last_error=reason[:64] or None,
        attempts=attempts,
    )


async def hold(
    session: AsyncSession, push: Push, now: datetime, until: datetime, reason: str
) -> bool:
    """Wait until the person writes again (WeChat's window), giving up at `until`."""
    return await _settle(
        session,
        push,
        state=HELD,
        hold_until=push.hold_until or until,
        attempts=_outbox.c.attempts - 1,
        updated_at=now,
        last_error=reason[:64],
    )


async def fail(session: AsyncSession, push: Push, now: datetime, reason: str) -> bool:
    """It can never go out; the reason stays on the row."""
    return await _settle(session, push, state=FAILED, updated_at=now, last_error=reason[:64])


async def release_held(session: AsyncSession, channel: str, chat_id: str, now: datetime) -> int:
    """The person wrote again: their held pushes are due now (quiet hours no longer matter,
    they are awake); returns how many."""
    stmt = (
        update(_outbox)
        .where(_outbox.c.channel == channel, _outbox.c.chat_id == chat_id, _outbox.c.state == HELD)
        .values(state=PENDING, next_attempt_at=now, quiet=False, updated_at=now)
    )
    return rowcount(await session.execute(stmt))


async def expire_holds(session: AsyncSession, now: datetime) -> int:
    """Held pushes whose person never wrote again in time fail with "hold-expired"."""
    stmt = (
        update(_outbox)
        .where(_outbox.c.state == HELD, _outbox.c.hold_until <= now)
        .values(state=FAILED, last_error="hold-expired", updated_at=now)
    )
    return rowcount(await session.execute(stmt))


async def sent_message_id(session: AsyncSession, push_id: int) -> tuple[str, str | None]:
    """The state of an earlier push and, once sent, the app's id of its message."""
    stmt = select(_outbox.c.state, _outbox.c.message_id).where(_outbox.c.id == push_id)
    row = (await session.execute(stmt)).one()
    return str(row.state), row.message_id


# --------------------------------------------------------------- the sender's hot statements
#
# The sender claims and marks thousands of pushes a minute at full speed. Through the ORM
# session each of these was a transaction of several driver calls (BEGIN, the statement, its
# rows, COMMIT), and on SQLite every call is a hop to the connection's thread and back through
# the event loop: a claim or a group of marks waited tens of milliseconds while the loop was
# busy with sends. Here each is one statement, built once, on the driver's own connection
# (storage.db.Database.driver): PostgreSQL runs it in autocommit (atomic by itself, one round
# trip, asyncpg's prepared-statement cache); SQLite runs the whole transaction in the
# connection's thread in one hop, as storage/checkin_fast.py does.

_RETURNED = (
    "id, channel, chat_id, member_id, kind, mode, edit_of, marketing, quiet, payload, "
    "attempts, hold_until"
)


@functools.cache
def _claim_sql(dialect: str, channels: int) -> str:
    """claim_due's statement for `channels` channels (PostgreSQL takes them as one array)."""
    if dialect == "sqlite":
        among = ", ".join(f"?{5 + i}" for i in range(channels))
        return (
            "UPDATE outbox SET attempts = attempts + 1, leased_until = ?1, next_attempt_at = ?1, "
            "updated_at = ?2 WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND "
            f"next_attempt_at <= ?2 AND channel IN ({among}) AND id NOT IN (SELECT value FROM "
            f"json_each(?4)) ORDER BY next_attempt_at, id LIMIT ?3) RETURNING {_RETURNED}"
        )
    return (
        "UPDATE outbox SET attempts = attempts + 1, leased_until = $1, next_attempt_at = $1, "
        "updated_at = $2 WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND "
        "next_attempt_at <= $2 AND channel = ANY($4::text[]) AND NOT id = ANY($5::bigint[]) "
        f"ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING {_RETURNED}"
    )


_EXPIRE_HOLDS = {
    "sqlite": "UPDATE outbox SET state = 'failed', last_error = 'hold-expired', updated_at = ?1 "
    "WHERE state = 'held' AND hold_until <= ?1",
    "postgresql": "UPDATE outbox SET state = 'failed', last_error = 'hold-expired', "
    "updated_at = $1 WHERE state = 'held' AND hold_until <= $1",
}
# Marked sent: the rows still pending with the attempt count their sender claimed (a lease
# another sender took over since has a higher count and is left alone).
_MARK_SENT = {
    "sqlite": "UPDATE outbox SET state = 'sent', sent_at = ?1, updated_at = ?1, "
    "leased_until = NULL, message_id = COALESCE(j.message, outbox.message_id) "
    "FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS attempts, "
    "json_extract(value, '$[2]') AS message FROM json_each(?2)) AS j "
    # `+`: not by the state's index (every pending row), by each id's row.
    "WHERE outbox.id = j.id AND outbox.attempts = j.attempts AND +outbox.state = 'pending' "
    "RETURNING outbox.id",
    "postgresql": "UPDATE outbox SET state = 'sent', sent_at = $1, updated_at = $1, "
    "leased_until = NULL, message_id = COALESCE(j.message, outbox.message_id) "
    "FROM unnest($2::bigint[], $3::int[], $4::text[]) AS j(id, attempts, message) "
    "WHERE outbox.id = j.id AND outbox.attempts = j.attempts AND outbox.state = 'pending' "
    "RETURNING outbox.id",
}


def _stored(moment: datetime) -> str:
    """How SQLAlchemy stores storage.models.UTCDateTime on SQLite (naive UTC, microseconds),
    so that the statements here compare and write the same text."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _moment(value: Any) -> datetime | None:
    """A timestamp read back: SQLite's text, PostgreSQL's aware datetime; aware UTC out."""
    if value is None:
        return None
    found = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(found, datetime)
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def _push(row: Any) -> Push:
    """A claimed row (in _RETURNED's order) as a Push."""
    payload = row[9]
    return Push(
        id=row[0],
        channel=row[1],
        chat_id=row[2],
        member_id=row[3],
        kind=row[4],
        mode=row[5],
        edit_of=row[6],
        marketing=bool(row[7]),
        quiet=bool(row[8]),
        payload=json.loads(payload) if isinstance(payload, str | bytes) else payload,
        attempts=row[10],
        hold_until=_moment(row[11]),
    )


async def _in_thread(db: Database, work: Any) -> Any:
    async with db.driver() as driver:  # aiosqlite
        # `_execute` runs a function in the connection's thread whole (aiosqlite has no public
        # name for it), `_conn` is its sqlite3 connection; as storage/checkin_fast.py does.
        return await driver._execute(sqlite_immediate, driver._conn, work)


async def claim_due(
    db: Database,
    now: datetime,
    *,
    lease: timedelta,
    limit: int,
    channels: frozenset[str],
    skip: Collection[int] = (),
    expire_holds: bool = False,
) -> list[Push]:
    """`claim` as one statement on the driver's connection (see above), for the sender; with
    `expire_holds`, `expire_holds` first (its own statement). `skip`: ids the sender still
    has under way from an earlier claim (a send that outlived its lease): not claimed again,
    so that the sender never sends one push twice at once."""
    until = now + lease
    names = sorted(channels)
    if not names:
        return []
    sql = _claim_sql(db.dialect, len(names))
    if db.dialect == "sqlite":
        args = (_stored(until), _stored(now), limit, json.dumps(list(skip)), *names)
        gone = _stored(now)

        def work(conn: sqlite3.Connection) -> list[Any]:
            if expire_holds:
                conn.execute(_EXPIRE_HOLDS["sqlite"], (gone,))
            return conn.execute(sql, args).fetchall()

        rows = await _in_thread(db, work)
    else:
        async with db.driver() as conn:  # asyncpg, autocommit: each statement atomic
            if expire_holds:
                await conn.execute(_EXPIRE_HOLDS["postgresql"], now)
            rows = await conn.fetch(sql, until, now, limit, names, list(skip))
    return sorted((_push(row) for row in rows), key=lambda p: p.id)


async def mark_sent_group(
    db: Database, sent: list[tuple[Push, str | None]], now: datetime
) -> set[int]:
    """mark_sent for many pushes by one statement (see above), committed by itself; returns
    the ids still theirs (marked). Each `message_id` is kept for later edits."""
    if not sent:
        return set()
    if db.dialect == "sqlite":
        given = json.dumps([[push.id, push.attempts, message] for push, message in sent])
        args = (_stored(now), given)

        def work(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(_MARK_SENT["sqlite"], args).fetchall()

        rows = await _in_thread(db, work)
    else:
        async with db.driver() as conn:
            rows = await conn.fetch(
                _MARK_SENT["postgresql"],
                now,
                [push.id for push, _ in sent],
                [push.attempts for push, _ in sent],
                [message for _, message in sent],
            )
    return {int(row[0]) for row in rows}
