"""The terminal as a chat app (channel `console`): `memberbot shell` and the test fixture."""

from __future__ import annotations

import asyncio
from typing import TextIO

from bot.app_core import Core
from bot.core.messages import Inbound, Reply, clean_text, numbered_text, options
from bot.core.outreach import Port

CHANNEL = "console"


class ConsolePort(Port):
    """Pushes to terminal members wait in an inbox until that member's next turn."""

    def __init__(self, channel: str = CHANNEL) -> None:
        self.channel = channel
        self.inbox: dict[str, list[Reply]] = {}

    async def push(self, external_id: str, reply: Reply) -> bool:
        self.inbox.setdefault(external_id, []).append(reply)
        return True

    def collect(self, external_id: str) -> list[Reply]:
        return self.inbox.pop(external_id, [])


class ConsoleChat:
    """One person talking to the bot from the terminal."""

    def __init__(
        self,
        core: Core,
        name: str,
        locale_hint: str | None = None,
        channel: str = CHANNEL,
    ) -> None:
        self.core = core
        self.name = name
        self.locale_hint = locale_hint
        # Tests speak as a member of another app through the same door (e.g. to link accounts).
        self.channel = channel
        self._last: Reply | None = None
        ports = core.services.outreach.ports
        port = ports.setdefault(channel, ConsolePort(channel))
        self.port = port if isinstance(port, ConsolePort) else None

    def pushed(self) -> list[Reply]:
        """Messages the bot pushed to this person (e.g. an invite reward), oldest first."""
        return self.port.collect(self.name) if self.port is not None else []

    def inbound(self, text: str) -> Inbound:
        text = clean_text(text, self.core.services.rules.limits.text_length)
        menu_key = None
        # ASCII only: "²" passes str.isdigit() but not int(); "١" would pick an option unasked.
        numeric = text.isascii() and text.isdigit() and len(text) <= 2
        choices = options(self._last) if self._last else ()
        if numeric and 1 <= int(text) <= len(choices):
            menu_key = choices[int(text) - 1].action
        return Inbound(
            channel=self.channel,
            external_id=self.name,
            chat_id=self.name,
            text=text,
            menu_key=menu_key,
            locale_hint=self.locale_hint,
            display_name=self.name,
        )

    async def say(self, text: str) -> Reply | None:
        reply = await self.core.dispatcher.handle(self.inbound(text))
        # The terminal is one conversation: what this message made the bot push to others
        # is done before the next line is read.
        await self.core.services.outreach.settle()
        if reply is not None:
            self._last = reply
        return reply


async def run_shell(core: Core, name: str, stdin: TextIO, stdout: TextIO) -> int:
    """Read lines until end of input; answer each. Blank lines are skipped."""
    chat = ConsoleChat(core, name)
    interactive = stdin.isatty()
    if interactive:
        stdout.write(
            f"memberbot shell, chatting as {name}. Try: help, 签到, points. Ctrl-D ends.\n"
        )
    while True:
        if interactive:
            stdout.write("> ")
            stdout.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            return 0
        if not line.strip():
            continue
        reply = await chat.say(line)
        for shown in [reply, *chat.pushed()]:
            if shown is not None:
                stdout.write(numbered_text(shown) + "\n")
        stdout.flush()
