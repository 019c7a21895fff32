"""The terminal as a chat app (channel `console`): `memberbot shell` and the test fixture."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TextIO

from bot.core.messages import Inbound, Reply, clean_text, numbered_text
from bot.core.options import NumberedOptions
from bot.core.ports import Delivery

if TYPE_CHECKING:
    from bot.app import Core

CHANNEL = "console"


class ConsolePusher:
    """Pushes to a terminal member who is in this shell wait in an inbox for their next turn;
    to anyone else they are held in the outbox until that member writes from a shell."""

    def __init__(self, channel: str = CHANNEL) -> None:
        self.channel = channel
        self.inbox: dict[str, list[Reply]] = {}
        self.present: set[str] = set()

    async def send(self, chat_id: str, reply: Reply) -> Delivery:
        if chat_id not in self.present:
            return Delivery(False, "not-in-shell", hold=True)
        self.inbox.setdefault(chat_id, []).append(reply)
        return Delivery.ok()

    def collect(self, chat_id: str) -> list[Reply]:
        return self.inbox.pop(chat_id, [])


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
        senders = core.services.senders
        if channel not in senders.pushers:
            senders.add(ConsolePusher(channel))
        pusher = senders.pushers[channel]
        self.pusher = pusher if isinstance(pusher, ConsolePusher) else None
        if self.pusher is not None:
            self.pusher.present.add(name)
        self.options = NumberedOptions(core.services.cache)

    def pushed(self) -> list[Reply]:
        """Messages the bot pushed to this person (e.g. an invite reward), oldest first."""
        return self.pusher.collect(self.name) if self.pusher is not None else []

    def inbound(self, text: str) -> Inbound:
        return Inbound(
            channel=self.channel,
            external_id=self.name,
            chat_id=self.name,
            text=clean_text(text, self.core.services.rules.limits.text_length),
            locale_hint=self.locale_hint,
            display_name=self.name,
        )

    async def say(self, text: str) -> Reply | None:
        # The terminal shows options as "[1] ...": a number picks one.
        inbound = await self.options.pick(self.inbound(text))
        reply = await self.core.dispatcher.handle(inbound)
        if reply is not None:
            await self.options.remember(self.channel, self.name, reply)
        # The terminal is one conversation: what this message made the bot push to others
        # is done before the next line is read.
        await self.core.services.pushes.settle()
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
