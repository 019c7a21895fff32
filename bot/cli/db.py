"""`memberbot db upgrade`: bring the database's schema to the code's."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from bot.cli.runtime import open_database
from bot.settings import Settings
from storage.migrate import upgrade


def add(commands: Any) -> None:
    db = commands.add_parser(
        "db",
        help="database tasks (MEMBERBOT_DATABASE_URL)",
        description="Database tasks on MEMBERBOT_DATABASE_URL.",
    )
    tasks = db.add_subparsers(dest="db_command", required=True, metavar="TASK")
    task = tasks.add_parser(
        "upgrade",
        help="apply the migrations",
        description="Apply the migrations to MEMBERBOT_DATABASE_URL. PostgreSQL needs this once "
        "per release, before the servers start; an SQLite file is also migrated when "
        "a command opens it.",
    )
    task.set_defaults(run=run_upgrade)


async def run_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    logging.getLogger().setLevel(logging.WARNING)
    async with open_database(settings) as db:
        await upgrade(db)
    print("database is up to date")
    return 0
