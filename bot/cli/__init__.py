"""The `memberbot` command: the parser of every command group, logging, one-line failures."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from bot import logs
from bot.cli import admin, db, serve, shell, wechat, worker
from bot.cli.runtime import Failed
from bot.settings import ConfigError, Settings, load_settings

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]

DESCRIPTION = """\
memberbot: a member assistant for WeChat and Telegram (check-ins, points, tiers, invites,
communities), with an operator API and a shop orders API.

Every command reads its settings from MEMBERBOT_* environment variables. Those that use the
database use MEMBERBOT_DATABASE_URL (default sqlite+aiosqlite:///./memberbot.db: a file in the
current folder; PostgreSQL: postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB)."""
EPILOG = """\
examples:
  memberbot serve                      # http://127.0.0.1:8080, migrates SQLite on start
  memberbot worker                     # with Redis: the jobs and the outbox, any number
  memberbot jobs run reminders         # one scheduled job now
  memberbot shell --as alice           # be the member alice in the terminal
  memberbot db upgrade                 # PostgreSQL: once per release, before serving
  memberbot admin community list
  memberbot COMMAND --help             # what a command takes"""
GROUPS = (serve, worker, shell, db, wechat, admin)


def _version() -> str:
    try:
        return version("memberbot")
    except PackageNotFoundError:
        return "unknown"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="memberbot",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"memberbot {_version()}")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add(commands)
    return top


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every request URL at INFO, and a Bot API URL carries the bot's token.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    logs.install()  # database errors' values (openids, names) out of every line


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a problem it cannot get past is one line on stderr, never a trace."""
    args = parser().parse_args(argv)
    configure_logging()
    try:
        settings = load_settings()
        command: Command = args.run
        return asyncio.run(command(settings, args))
    except ConfigError as exc:
        return _say(str(exc), 2)
    except Failed as exc:
        return _say(exc.reason, exc.code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`memberbot ... | head`): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _say(reason: str, code: int) -> int:
    print(f"memberbot: {' '.join(reason.split())}", file=sys.stderr)
    return code
