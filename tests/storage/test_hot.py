"""storage.hot: the driver's connection from the engine's pool, given back in every case."""

from __future__ import annotations

import asyncio

import pytest

from storage import hot
from storage.db import Database


def _checked_out(db: Database) -> int:
    return int(db.engine.pool.checkedout())  # type: ignore[attr-defined]


async def test_the_connection_goes_back_to_the_pool(db: Database):
    async with hot.driver(db) as conn:
        assert conn is not None

    assert _checked_out(db) == 0


async def test_a_refused_statement_keeps_the_connection(db: Database):
    if db.dialect == "sqlite":
        pytest.skip("PostgreSQL: the pool's own connections")
    async with hot.driver(db) as conn:
        before = conn
    with pytest.raises(Exception, match="syntax"):
        async with hot.driver(db) as conn:
            await conn.fetchrow("SELEC 1")

    async with hot.driver(db) as conn:
        assert conn is before  # kept: the server refused a statement, nothing more
        assert await conn.fetchval("SELECT 1") == 1
    assert _checked_out(db) == 0


async def test_a_cancelled_or_failed_use_is_not_handed_out_again(db: Database):
    if db.dialect == "sqlite":
        pytest.skip("PostgreSQL: the pool's own connections")
    async with hot.driver(db) as conn:
        first = conn

    started = asyncio.Event()

    async def slow() -> None:
        async with hot.driver(db) as conn:
            started.set()  # the query is sent before this task next waits
            await conn.fetchrow("SELECT pg_sleep(10)")

    task = asyncio.ensure_future(slow())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert first.is_closed()
    assert _checked_out(db) == 0
    async with hot.driver(db) as conn:  # a new connection, in the pool's place
        assert conn is not first
        assert await conn.fetchval("SELECT 1") == 1


async def test_a_connection_the_server_closed_is_replaced(db: Database):
    if db.dialect == "sqlite":
        pytest.skip("PostgreSQL: the pool's own connections")
    with pytest.raises(Exception):  # noqa: B017 - asyncpg's or the socket's, either is fine
        async with hot.driver(db) as conn:
            pid = conn.get_server_pid()
            async with db.engine.connect() as other:  # another of the pool's connections
                await other.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
            await conn.fetchval("SELECT 1")

    async with hot.driver(db) as conn:
        assert conn.get_server_pid() != pid
        assert await conn.fetchval("SELECT 1") == 1
    assert _checked_out(db) == 0
