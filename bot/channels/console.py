"""The terminal as a chat app (channel `console`): `memberbot shell` and the test fixture."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TextIO
from urllib.parse import quote

from bot.core.messages import Button, Inbound, Reply, clean_text, numbered_text, options
from bot.core.options import NumberedOptions
from bot.core.ports import Delivery, InviteLink

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


OFFLINE_BOT = "offline_memberbot"  # a made-up bot name: the links say they lead nowhere


class OfflineApp(ConsolePusher):
    """WeChat or Telegram as `memberbot shell --app` poses them: pushes wait in the inbox,
    and the app's own answers (invite deep link or QR, a group's one-person link) are made up
    and marked offline, so they can be read without reaching the app."""

    async def invite_link(self, member_id: int, payload: str) -> InviteLink | None:
        if self.channel == "telegram":
            return InviteLink("link", f"https://t.me/{OFFLINE_BOT}?start={payload}")
        return InviteLink("qr", f"https://example.invalid/offline-qr?scene={payload}")

    def share_url(self, url: str, text: str) -> str | None:
        if self.channel != "telegram":
            return None
        return f"https://t.me/share/url?url={quote(url, safe='')}&text={quote(text, safe='')}"

    async def personal_link(self, chat_id: str, name: str, hours: int) -> str | None:
        return f"https://t.me/+offline-{quote(name.replace(' ', '-'), safe='')}"

    async def revoke_link(self, chat_id: str, link: str) -> None:
        return None

    async def answer_join_request(self, chat_id: str, user_id: str, approve: bool) -> bool:
        return True

    async def remove(self, chat_id: str, user_id: str) -> None:
        return None


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
        self.latest: tuple[Button, ...] = ()  # what typed numbers pick now (as `options` does)

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
            # As the cache keeps them: a reply without options leaves the earlier ones.
            self.latest = options(reply) or self.latest
        # The terminal is one conversation: what this message made the bot push to others
        # is done before the next line is read.
        await self.core.services.pushes.settle()
        return reply


def pick_note(text: str, choices: int) -> str | None:
    """What the terminal says when a typed number cannot pick an option (it is still sent:
    it may answer a question), or None when it can, or is no option number at all."""
    typed = text.strip()
    if not (typed.isascii() and typed.isdigit()) or len(typed) > 2:
        return None
    if choices == 0:
        return f"(nothing to pick: the last reply had no numbered options; sent “{typed}” as text)"
    if not 1 <= int(typed) <= choices:
        return f"(there is no option {typed}: the latest options are 1 to {choices})"
    return None


async def converse(chat: ConsoleChat, line: str) -> str:
    """One turn as the terminal shows it: any note, the reply, then what was pushed."""
    shown = []
    if note := pick_note(line, len(chat.latest)):
        shown.append(note)
    reply = await chat.say(line)
    shown.extend(numbered_text(r) for r in [reply, *chat.pushed()] if r is not None)
    return "\n".join(shown)


async def run_piped(chat: ConsoleChat, stdin: TextIO, stdout: TextIO) -> int:
    """Lines from a pipe or file until its end: each echoed as "> line", then its answer and
    a blank line, so a transcript reads turn by turn. Blank lines are skipped."""
    while True:
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            return 0
        if not line.strip():
            continue
        said = clean_text(line, ECHO_LIMIT)
        stdout.write(f"> {said}\n{await converse(chat, line)}\n\n")
        stdout.flush()


ECHO_LIMIT = 200  # characters of a piped line echoed back (the bot still gets all of it)
