"""`memberbot shell`: chat with the bot in the terminal, as a member of the console app."""

from __future__ import annotations

import argparse
import getpass
import io
import logging
import sys
from typing import Any

from bot.channels.console import run_shell
from bot.cli.runtime import open_core
from bot.core.messages import usable_id
from bot.settings import ConfigError, Settings


def add(commands: Any) -> None:
    shell = commands.add_parser(
        "shell",
        help="chat with the bot in the terminal (MEMBERBOT_DATABASE_URL)",
        description="Chat with the bot in the terminal: the same answers as WeChat and "
        "Telegram, as the member NAME of the console app, in MEMBERBOT_DATABASE_URL. "
        "Ctrl-D ends.",
    )
    shell.add_argument(
        "--as", dest="name", metavar="NAME", help="who you are (default: your login name)"
    )
    shell.set_defaults(run=run)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "guest"


async def run(settings: Settings, args: argparse.Namespace) -> int:
    name = args.name or _login_name()
    if not usable_id(name):  # the bot would not answer such a member
        raise ConfigError("--as NAME must be 1 to 128 characters, no control characters")
    logging.getLogger().setLevel(logging.WARNING)
    # Bytes that are not text in the terminal's encoding (a pasted binary, a Latin-1 terminal
    # showing Chinese replies) become replacement characters instead of ending the shell.
    for stream in (sys.stdin, sys.stdout):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")
    async with open_core(settings) as core:
        return await run_shell(core, name, sys.stdin, sys.stdout)
