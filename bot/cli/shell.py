"""`memberbot shell`: chat with the bot in the terminal, as a member of the console app, or
posing as a WeChat or Telegram member (`--app`), so linking can be tried offline."""

from __future__ import annotations

import argparse
import getpass
import io
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from bot.channels.console import ConsoleChat, ConsolePusher, OfflineApp, converse, run_piped
from bot.cli.runtime import open_core
from bot.core.messages import usable_id
from bot.settings import ConfigError, Settings

APPS = ("console", "wechat", "telegram")
HISTORY = ".memberbot_history"  # in the home folder: arrows recall earlier lines across runs


def add(commands: Any) -> None:
    shell = commands.add_parser(
        "shell",
        help="chat with the bot in the terminal (MEMBERBOT_DATABASE_URL)",
        description="Chat with the bot in the terminal: the same answers as WeChat and "
        "Telegram, as the member NAME of the console app (or, with --app, of WeChat or "
        "Telegram: e.g. /link in one shell and the code in another), in "
        "MEMBERBOT_DATABASE_URL. Line editing and history (arrows), Ctrl-C clears the line, "
        "Ctrl-D ends. A number picks one of the latest [n] options. Piped input: each line "
        "is echoed as '> line', its answer follows, then a blank line.",
    )
    shell.add_argument(
        "--as", dest="name", metavar="NAME", help="who you are (default: your login name)"
    )
    shell.add_argument(
        "--app",
        choices=APPS,
        default="console",
        help="whose member you pose as: console (default), wechat (NAME is the openid) or "
        "telegram (NAME is the user id); nothing is sent to those apps",
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
        # Posing as an app's member sends nothing to that app, even where its token is set:
        # what the bot pushes to its members waits in the terminal's inbox instead.
        core.services.senders.add(
            ConsolePusher() if args.app == "console" else OfflineApp(args.app)
        )
        chat = ConsoleChat(core, name, channel=args.app)
        if sys.stdin.isatty() and sys.stdout.isatty():
            return await run_interactive(chat, sys.stdout, _session(Path.home() / HISTORY))
        return await run_piped(chat, sys.stdin, sys.stdout)


def _session(history: Path) -> Any:
    """A prompt_toolkit session with history kept in `history` (in memory if not writable)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    try:
        history.touch(exist_ok=True)
        return PromptSession(history=FileHistory(str(history)))
    except OSError:
        return PromptSession(history=InMemoryHistory())


async def run_interactive(chat: ConsoleChat, stdout: TextIO, session: Any) -> int:
    """Read with a line editor: arrows edit and recall, Ctrl-C drops the line at once,
    Ctrl-D (on an empty line) ends, leaving the terminal on a fresh line."""
    app = "" if chat.channel == "console" else f" ({chat.channel} member)"
    stdout.write(
        f"memberbot shell, chatting as {chat.name}{app}. Try: help, 签到, points. "
        "A number picks an option. Ctrl-D ends.\n"
    )
    stdout.flush()
    while True:
        try:
            line = await session.prompt_async("> ")
        except KeyboardInterrupt:
            continue  # the line is dropped; the prompt comes back at once
        except EOFError:
            stdout.write("\n")
            stdout.flush()
            return 0
        if not line.strip():
            continue
        stdout.write(await converse(chat, line) + "\n")
        stdout.flush()
