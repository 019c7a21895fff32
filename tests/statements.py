"""Counting the SQL statements a piece of work runs, through every engine of the database
(SQLite reads go through an engine of their own)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from storage.db import Database


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The statements run inside the block, in order."""
    ran: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        ran.append(statement)

    engines = [engine.sync_engine for engine in db.engines]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield ran
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)
