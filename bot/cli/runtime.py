"""What every command that touches the database shares: opening the core, and turning a
database or cache that cannot be used into one line naming the setting and the cause."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InvalidRequestError
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import Core, build_core
from bot.settings import Settings
from storage.db import Database

DATABASE_SETTING, REDIS_SETTING = "MEMBERBOT_DATABASE_URL", "MEMBERBOT_REDIS_URL"
USABLE = "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB"


class Failed(Exception):
    """A command that cannot go on: its one-line reason, and the exit code."""

    def __init__(self, reason: str, code: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def masked(url: str) -> str:
    """The URL with its password replaced by ***, parseable or not."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def cause(exc: BaseException) -> str:
    """The reason in a few words: `connection refused`, `database "x" does not exist`."""
    seen: BaseException | None = exc
    while seen is not None:  # the socket's own error, if one is behind the library's
        if isinstance(seen, socket.gaierror) and seen.strerror:
            return seen.strerror.lower()
        if isinstance(seen, OSError) and seen.errno and seen.errno > 0:
            return os.strerror(seen.errno).lower()  # "connection refused", whatever the wrapper
        seen = seen.__cause__ or seen.__context__
    inner = getattr(exc, "orig", None) or exc
    text = str(inner).splitlines()[0] if str(inner) else type(inner).__name__
    return re.sub(r"^\(\S+\) ", "", text)


def _sqlite_folder(url: str) -> Path | None:
    """The folder of an SQLite file URL, when that folder does not exist."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return None
    folder = Path(database).expanduser().parent
    return None if folder.is_dir() else folder


def database_failure(url: str, exc: BaseException) -> Failed:
    """One line for a database that cannot be used, never showing its password."""
    setting = f"{DATABASE_SETTING}={masked(url)}"
    if isinstance(exc, ArgumentError | InvalidRequestError | ImportError):
        return Failed(f"{setting} is not a database URL memberbot can use; use {USABLE}", 2)
    if url.startswith("sqlite"):
        folder = _sqlite_folder(url)
        if folder is not None:
            return Failed(f"cannot open the database at {setting}: folder {folder} does not exist")
        return Failed(f"cannot open the database at {setting}: {cause(exc)}")
    return Failed(f"cannot reach the database at {setting}: {cause(exc)}")


# SQLSTATE classes of a connection refused by PostgreSQL: connection exception, invalid
# authorization (unknown role, wrong password), invalid catalog name (no such database).
REFUSED_CONNECTION = ("08", "28", "3D")


def _unusable(exc: BaseException, connecting: bool) -> bool:
    """A failure of the connection itself (as opposed to a refusal of one statement); a bare
    socket error counts only while connecting (later it may be the terminal's, not ours)."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, OSError | TimeoutError):
        return connecting
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return str(getattr(exc, "sqlstate", "") or "")[:2] in REFUSED_CONNECTION


def check_url(url: str) -> None:
    """Refuse, as `Failed`, a URL no engine can be made of (unknown scheme, sync driver)."""
    try:
        engine = create_async_engine(url)
    except (ArgumentError, InvalidRequestError, ImportError) as exc:
        raise database_failure(url, exc) from exc
    engine.sync_engine.dispose()  # it never connected


@contextmanager
def database_errors(url: str, *, connecting: bool) -> Iterator[None]:
    """Inside: a database that cannot be reached or opened becomes `Failed`."""
    try:
        yield
    except Exception as exc:
        if not _unusable(exc, connecting):
            raise
        raise database_failure(url, exc) from exc


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The database alone (for migrations), checked reachable."""
    url = settings.database_url
    check_url(url)
    db = Database(url)
    try:
        with database_errors(url, connecting=True):
            await db.ping()
        with database_errors(url, connecting=False):
            yield db
    finally:
        await db.close()


@asynccontextmanager
async def open_core(settings: Settings) -> AsyncIterator[Core]:
    """The core, its database and cache checked reachable first, closed at the end."""
    url = settings.database_url
    check_url(url)
    with database_errors(url, connecting=True):
        core = await build_core(settings)
    try:
        with database_errors(url, connecting=True):
            await core.services.db.ping()
        await _check_cache(core, settings)
        with database_errors(url, connecting=False):
            yield core
    finally:
        await core.close()


async def _check_cache(core: Core, settings: Settings) -> None:
    if settings.redis_url is None:
        return
    try:
        await core.services.cache.ping()
    except Exception as exc:
        setting = f"{REDIS_SETTING}={masked(settings.redis_url)}"
        raise Failed(f"cannot reach Redis at {setting}: {cause(exc)}") from exc
