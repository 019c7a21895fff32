"""Shared fixtures: every storage-touching test runs on SQLite + in-process cache and on
PostgreSQL + Redis. With CI set, a missing PostgreSQL or Redis fails the run instead of skipping."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from bot.app import Core, build_core
from bot.channels.console import ConsoleChat
from bot.core.clock import FixedClock
from bot.core.first_contact import NOTICE as PRIVACY_NOTICE
from bot.core.i18n import Translator
from bot.core.router import Vocabulary
from bot.http.common import CORE
from bot.http.server import create_app
from bot.settings import Settings
from handlers import ROUTERS
from handlers.help import help_text
from storage.cache import Keys, MemoryCache, RedisCache
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Base

PG_ADMIN_DSN = os.environ.get("MEMBERBOT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
# One database per test session, so parallel runs on one machine do not trample each other.
PG_TEST_DB = f"memberbot_test_{os.getpid()}"
PG_URL = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
PG_URL = f"{PG_URL}/{PG_TEST_DB}"
REDIS_URL = os.environ.get("MEMBERBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SHANGHAI = ZoneInfo("Asia/Shanghai")
# 2026-03-10 10:00 in Shanghai: a Tuesday, far from any day boundary.
START = datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)
# The English help text as the actions declare it.
HELP_TEXT = help_text(Translator("en"), Vocabulary(ROUTERS))
# The line a new member's first answer ends with.
PRIVACY_LINE = "\n" + PRIVACY_NOTICE


def privacy_line(locale: str) -> str:
    """PRIVACY_LINE in another language."""
    return "\n" + Translator(locale)(PRIVACY_NOTICE)


ADMIN_TOKEN = "test-admin-token"
SHOP_SECRET = "test-shop-secret"


def sending_outbox(app: web.Application) -> web.Application:
    """The outbox sender of `memberbot serve` (without the scheduler's jobs) on a test app:
    pushes go out as they would in production, woken after each commit."""

    async def sender(app: web.Application) -> AsyncIterator[None]:
        core: Core = app[CORE]
        stop = asyncio.Event()
        core.services.pushes.on_wake(core.jobs.sender.wake)
        task = asyncio.create_task(core.jobs.sender.run(stop))
        yield
        stop.set()
        await task

    app.cleanup_ctx.append(sender)
    return app


async def outbox_idle(core: Core, timeout: float = 5) -> None:
    """Wait until nothing due is left in the outbox and nothing is being sent."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        handled = await core.services.pushes.settle()
        if not handled and not core.jobs.sender.busy:
            return
        assert asyncio.get_running_loop().time() < deadline, "outbox still busy"
        await asyncio.sleep(0.01)


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable: {exc}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: the PostgreSQL/Redis variants must run)")
    pytest.skip(message)


async def _admin(sql: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


async def _prepare_postgres() -> None:
    await _admin(f"DROP DATABASE IF EXISTS {PG_TEST_DB} WITH (FORCE)")
    await _admin(f"CREATE DATABASE {PG_TEST_DB}")
    db = Database(PG_URL, pool_size=2)
    try:
        await upgrade(db)
    finally:
        await db.close()


@pytest.fixture(scope="session")
def postgres_ready() -> Iterator[str | Exception]:
    """Create and migrate the test database once; yields the error if PostgreSQL is down."""
    try:
        asyncio.run(_prepare_postgres())
    except Exception as exc:  # reported by the tests that need it
        yield exc
        return
    yield PG_URL
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {PG_TEST_DB} WITH (FORCE)"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite+aiosqlite:///{path}")

    async def migrate() -> None:
        try:
            await upgrade(db)
        finally:
            await db.close()

    asyncio.run(migrate())
    return path


async def _redis_or_fail() -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        _unavailable("Redis", exc)
    finally:
        await client.aclose()


async def _truncate(url: str) -> None:
    db = Database(url, pool_size=1)
    try:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await db.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_ready: str | Exception,
) -> AsyncIterator[tuple[str, str | None]]:
    """(database URL, Redis URL or None): SQLite + in-process cache, or PostgreSQL + Redis."""
    if request.param == "sqlite":
        path = tmp_path / "memberbot.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}", None
        return
    if isinstance(postgres_ready, Exception):
        _unavailable("PostgreSQL", postgres_ready)
    await _redis_or_fail()
    await _truncate(PG_URL)
    yield PG_URL, REDIS_URL


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def make_settings(database_url: str, redis_url: str | None, **extra: object) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        admin_token=ADMIN_TOKEN,
        shop_secret=SHOP_SECRET,
        timezone="Asia/Shanghai",
        default_locale="en",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def core(backend: tuple[str, str | None], clock: FixedClock) -> AsyncIterator[Core]:
    database_url, redis_url = backend
    built = await build_core(
        make_settings(database_url, redis_url),
        clock=clock,
        keys=Keys(prefix=f"mbtest:{uuid.uuid4().hex}"),
        migrate_sqlite=False,
    )
    yield built
    await built.close()


@pytest.fixture
def chat(core: Core) -> Callable[..., ConsoleChat]:
    """`chat("alice")` is Alice in the terminal; `chat("bob", channel="telegram")` elsewhere."""
    chats: dict[tuple[str, str], ConsoleChat] = {}

    def get(name: str, channel: str = "console", locale_hint: str | None = "en") -> ConsoleChat:
        key = (channel, name)
        if key not in chats:
            chats[key] = ConsoleChat(core, name, locale_hint=locale_hint, channel=channel)
        return chats[key]

    return get


@pytest.fixture
async def http(core: Core) -> AsyncIterator[Callable[..., Awaitable[ClientSession]]]:
    """A real HTTP server on loopback running the app; yields a client session bound to it."""
    server = TestServer(create_app(core, background=False))
    await server.start_server()
    session = ClientSession(base_url=str(server.make_url("/")))
    yield session  # type: ignore[misc]
    await session.close()
    await server.close()


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[MemoryCache | RedisCache]:
    keys = Keys(prefix=f"mbtest:{uuid.uuid4().hex}")
    if request.param == "memory":
        yield MemoryCache(keys)
        return
    await _redis_or_fail()
    redis_cache = RedisCache(REDIS_URL, keys)
    yield redis_cache
    await redis_cache.close()
