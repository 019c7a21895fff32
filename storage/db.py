"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Result, Table, TextualSelect, bindparam, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.errors import MemberMerged


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 20, immediate: bool = True) -> AsyncEngine:
    """Create the engine; SQLite gets WAL, foreign keys and (`immediate`) writer transactions.

    No pre-ping on PostgreSQL: it costs round trips on every checkout of the hot path;
    connections are recycled instead, and a dead one fails one request, not the process.
    """
    if not is_sqlite(url):
        return create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
            hide_parameters=True,  # a failed statement's message would carry openids, names
        )
    # SQLite has one writer at a time anyway: a single pooled writer connection makes writers
    # queue in order in the pool instead of sleeping in SQLite's busy handler (long tails).
    sizing = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60} if immediate else {}
    engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **sizing)

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

    if immediate:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """The engine plus a session factory; `transaction()` is the unit of work."""

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.dialect = "sqlite" if is_sqlite(url) else "postgresql"
        # Reads take no write lock on SQLite (WAL lets them run beside the one writer) and run
        # in autocommit on PostgreSQL (no BEGIN/ROLLBACK round trips around one SELECT).
        if self.dialect == "sqlite":
            self._read_engine = make_engine(url, immediate=False)
            reads: AsyncEngine = self._read_engine
        else:
            self._read_engine = self.engine
            reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._readers = async_sessionmaker(reads, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only; on SQLite it does not queue behind writers."""
        async with self._readers() as session:
            yield session

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
