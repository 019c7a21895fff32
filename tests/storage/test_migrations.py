"""Migrations and models never drift; the schema can go down to nothing and back up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from storage.db import Database
from storage.migrate import alembic_config, upgrade
from storage.models import Base

TABLES = {
    "members",
    "identities",
    "ledger_entries",
    "checkins",
    "orders",
    "link_codes",
    "invites",
    "communities",
    "community_members",
    "group_invite_links",
    "roles",
}


def _diff(sync: Connection) -> list[object]:
    context = MigrationContext.configure(sync, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _current(sync: Connection) -> str | None:
    return MigrationContext.configure(sync).get_current_revision()


def _tables(sync: Connection) -> set[str]:
    return set(inspect(sync).get_table_names())


def _head() -> str:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"migrations must have one head, found {heads}"
    return heads[0]


async def test_migrated_schema_matches_the_models(db):
    async with db.engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
        assert await conn.run_sync(_current) == _head()
        assert await conn.run_sync(_tables) >= TABLES


async def test_sqlite_downgrades_to_nothing_and_upgrades_again(tmp_path: Path):
    fresh = Database(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    try:
        await upgrade(fresh)
        async with fresh.engine.connect() as conn:
            assert await conn.run_sync(_current) == _head()
        async with fresh.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "base"))
        async with fresh.engine.connect() as conn:
            assert await conn.run_sync(_tables) == {"alembic_version"}
            assert await conn.run_sync(_current) is None
        await upgrade(fresh)
        async with fresh.engine.connect() as conn:
            assert await conn.run_sync(_tables) >= TABLES
            assert await conn.run_sync(_diff) == []
            assert await conn.run_sync(_current) == _head()
    finally:
        await fresh.close()
