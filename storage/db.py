"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Result, Table, TextualSelect, bindparam, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolResetState

from storage.errors import MemberMerged

READERS = 8  # SQLite reader connections (WAL: they read beside the one writer)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


POOL_TIMEOUT = 60.0  # seconds a request waits for a SQLite connection before it fails


def make_engine(
    url: str, *, pool_size: int = 20, immediate: bool = True, pool_timeout: float = POOL_TIMEOUT
) -> AsyncEngine:
    """Create the engine; SQLite gets WAL, foreign keys and (`immediate`) writer transactions.

    No pre-ping on PostgreSQL: it costs round trips on every checkout of the hot path;
    connections are recycled instead, and a dead one fails one request, not the process.
    The pool keeps what it opened, up to 2 × `pool_size` (opened on demand): with overflow
    connections, every checkout past `pool_size` at a busy moment opened a new connection
    (and introspected its types) only to close it on return; the profile showed it.
    """
    if not is_sqlite(url):
        return create_async_engine(
            url,
            pool_size=2 * pool_size,
            max_overflow=0,
            pool_recycle=1800,
            hide_parameters=True,  # a failed statement's message would carry openids, names
        )
    # SQLite has one writer at a time anyway: a single pooled writer connection makes writers
    # queue in order in the pool instead of sleeping in SQLite's busy handler (long tails).
    # Readers: a fixed set, kept open (an overflow connection was opened, PRAGMA'd and given a
    # thread for one SELECT, then closed, whenever more than 5 reads overlapped).
    sizing = {"pool_size": 1 if immediate else READERS, "max_overflow": 0}
    # No unconditional rollback on return to the pool: on aiosqlite it is one more hop to the
    # connection's thread per use (the profile at 500 posts in flight showed it), and there is
    # normally nothing to roll back: the connection is in autocommit mode (below), reads open
    # no transaction, and every transaction is ended where it is begun (SQLAlchemy's,
    # storage/checkin_fast.py's). `_on_reset` below rolls back only what was left open.
    engine = create_async_engine(
        url,
        connect_args={"timeout": 30},
        hide_parameters=True,
        pool_reset_on_return=None,
        pool_timeout=pool_timeout,
        **sizing,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take control of BEGIN so every transaction starts IMMEDIATE: concurrent writers then
        # queue on the busy timeout instead of failing with "database is locked" on upgrade.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_conn: Any, _record: Any, state: PoolResetState) -> None:
        # A transaction left open (a COMMIT and then its ROLLBACK failed) would make every
        # later BEGIN on this connection fail; sqlite3 knows without a hop to its thread.
        if state.asyncio_safe and dbapi_conn.driver_connection.in_transaction:
            dbapi_conn.rollback()

    if immediate:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class _Turn:
    """A FIFO semaphore whose wait fails after `timeout` seconds with the error the pool itself
    raises when it times out (so it is answered as any failure to get a connection)."""

    __slots__ = ("_free", "_size", "_timeout")

    def __init__(self, size: int, timeout: float) -> None:
        self._free = asyncio.Semaphore(size)
        self._size, self._timeout = size, timeout

    async def __aenter__(self) -> None:
        if not self._free.locked():  # a free turn and nobody queued: no timer to arm
            await self._free.acquire()
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._free.acquire()
        except TimeoutError:
            raise PoolTimeout(
                f"QueuePool limit of size {self._size} overflow 0 reached, "
                f"connection timed out, timeout {self._timeout:.2f}",
                code="3o7r",
            ) from None

    async def __aexit__(self, *_exc: object) -> None:
        self._free.release()


class Database:
    """The engine plus a session factory; `transaction()` is the unit of work."""

    def __init__(
        self, url: str, *, pool_size: int = 20, pool_timeout: float = POOL_TIMEOUT
    ) -> None:
        self.url = url
        self.pool_timeout = pool_timeout  # SQLite: the wait for a turn (see `_turn`)
        self.engine = make_engine(url, pool_size=pool_size, pool_timeout=pool_timeout)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.dialect = "sqlite" if is_sqlite(url) else "postgresql"
        # Reads take no write lock on SQLite (WAL lets them run beside the one writer) and run
        # in autocommit on PostgreSQL (no BEGIN/ROLLBACK round trips around one SELECT).
        if self.dialect == "sqlite":
            self._read_engine = make_engine(url, immediate=False, pool_timeout=pool_timeout)
            reads: AsyncEngine = self._read_engine
        else:
            self._read_engine = self.engine
            reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._readers = async_sessionmaker(reads, expire_on_commit=False)
        self._turns: dict[bool, tuple[asyncio.AbstractEventLoop, _Turn]] = {}

    def _turn(self, read: bool) -> AsyncExitStack | _Turn:
        """SQLite: connections in arrival order. The pool's own queue lets a newcomer take a
        connection just handed to a waiter, which then queues again at the back: with 500
        posts in flight some waited seconds for the one writer (issue 15.12). A semaphore
        (FIFO) in front of each pool, as large as the pool, keeps the order. PostgreSQL's
        pool is left as it is (a reader opened inside a transaction holds two connections).
        The wait is bounded as the pool's own was (`pool_timeout`): the pool, behind the
        semaphore, never waits itself."""
        if self.dialect != "sqlite":
            return AsyncExitStack()  # nothing to wait for
        loop = asyncio.get_running_loop()
        held = self._turns.get(read)
        if held is None or held[0] is not loop:  # a semaphore belongs to one event loop
            held = (loop, _Turn(READERS if read else 1, self.pool_timeout))
            self._turns[read] = held
        return held[1]

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every engine statements go through (SQLite reads have their own)."""
        if self._read_engine is self.engine:
            return (self.engine,)
        return (self.engine, self._read_engine)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._turn(False), self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; on SQLite it does not queue behind writers."""
        async with self._turn(True), self._readers() as session:
            yield session

    @asynccontextmanager
    async def driver(self, *, read: bool = False) -> AsyncIterator[Any]:
        """The driver's own connection (asyncpg, or aiosqlite) from the engine's pool, for the
        few hot statements that skip SQLAlchemy's per-call work (storage/checkin_fast.py)."""
        engine = self._read_engine if read else self.engine
        async with self._turn(read), engine.connect() as conn:
            yield (await conn.get_raw_connection()).driver_connection

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        await self.engine.dispose()
        if self._read_engine is not self.engine:
            await self._read_engine.dispose()


T = TypeVar("T")


def worth_retrying(exc: BaseException) -> bool:
    """Work whose transaction was rolled back whole and may simply run again (every write path
    is idempotent by its keys): its member was merged into another meanwhile (linked accounts),
    or PostgreSQL aborted it to break a deadlock or a serialization failure."""
    if isinstance(exc, MemberMerged):
        return True
    orig = getattr(exc, "orig", None)
    return isinstance(exc, DBAPIError) and getattr(orig, "sqlstate", None) in ("40P01", "40001")


async def once_more_if_needed(work: Callable[[], Awaitable[T]]) -> T:
    """Run `work`, and once more if it failed in a way `worth_retrying` (it looks its member
    up again itself, so the second run acts for the merged member)."""
    try:
        return await work()
    except Exception as exc:
        if not worth_retrying(exc):
            raise
    return await work()


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (what a conditional update decides by)."""
    return int(cast("CursorResult[Any]", result).rowcount)


def insert_ignoring(
    table: Table, columns: Sequence[str], conflict: Sequence[str], returning: str
) -> TextualSelect:
    """INSERT ... ON CONFLICT (conflict) DO NOTHING RETURNING one column (no `conflict`:
    any unique key's conflict).

    The same SQL runs on SQLite (3.35+) and PostgreSQL. Built once as a text statement with
    typed parameters: SQLAlchemy cannot cache dialect upserts, and recompiling one costs more
    than running it on the check-in path. No row back means the conflict won.
    """
    names = ", ".join(columns)
    params = ", ".join(f":{c}" for c in columns)
    target = f" ({', '.join(conflict)})" if conflict else ""
    sql = (
        f"INSERT INTO {table.name} ({names}) VALUES ({params}) "
        f"ON CONFLICT{target} DO NOTHING RETURNING {returning}"
    )
    typed = [bindparam(c, type_=table.c[c].type) for c in columns]
    return text(sql).bindparams(*typed).columns(table.c[returning])


def sqlite_immediate(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work(conn)` between BEGIN IMMEDIATE and COMMIT, in aiosqlite's thread (the
    connection is in autocommit mode: this module takes control of BEGIN)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (a full disk, an I/O error) leaves the transaction open: on the one
        # writer connection every later BEGIN IMMEDIATE would fail. The first error is the one
        # to raise; a rollback that fails too is left to the pool's reset on return.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return done
