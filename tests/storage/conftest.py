"""Storage fixtures: a `Database` on the parametrised backend, members and a movable clock."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.core.clock import FixedClock
from storage import members
from storage.db import Database


@pytest.fixture
async def db(backend: tuple[str, str | None]) -> AsyncIterator[Database]:
    """The migrated database behind `backend` (SQLite copy or a truncated PostgreSQL)."""
    database = Database(backend[0])
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def new_member(db: Database, clock: FixedClock) -> Callable[..., Awaitable[int]]:
    """`await new_member()` creates a fresh console member and returns its id."""
    counter = itertools.count(1)

    async def make(external_id: str | None = None, channel: str = "console") -> int:
        member, created = await members.get_or_create(
            db, channel, external_id or f"member-{next(counter)}", clock.now()
        )
        assert created
        return member.id

    return make
