"""What the core may ask of a chat app beyond answering: push a message to a member, make an
invite link or QR code, let someone into (or out of) a community's group.

Each channel registers a `Port` on the core at start-up; handlers only ever see this interface,
never telegram or wechatpy. A channel without a capability inherits the "can't" default.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.i18n import Translator, pick_locale
from bot.core.messages import Reply
from storage import members
from storage.db import Database
from storage.models import Community, Member

log = logging.getLogger("memberbot.outreach")


@dataclass(frozen=True)
class InviteLink:
    """How a member's invite looks in one app: a deep link (Telegram) or a QR image (WeChat)."""

    kind: str  # "link" or "qr"
    url: str
    share_url: str | None = None


@dataclass(frozen=True)
class GroupInvite:
    """A way into a community's group in one app: a personal link, or the group's QR code."""

    kind: str  # "personal_link" (one person, expires) or "qr"
    url: str
    hours: int = 0


class Port:
    """A channel's capabilities; every method answers "can't" unless the channel overrides it."""

    channel = ""

    async def push(self, external_id: str, reply: Reply) -> bool:
        """Send a message the member did not ask for just now; True when it went out."""
        return False

    async def invite_link(self, member: Member) -> InviteLink | None:
        return None

    async def group_invite(self, community: Community, member: Member) -> GroupInvite | None:
        return None

    async def remove_from_group(self, community: Community, external_id: str) -> None:
        return None


@dataclass
class Outreach:
    """The ports of the running channels, and pushes addressed to a member (not an account)."""

    db: Database
    default_locale: str
    ports: dict[str, Port] = field(default_factory=dict)
    _pending: set[asyncio.Task[bool]] = field(default_factory=set)

    def register(self, port: Port) -> None:
        self.ports[port.channel] = port

    def port(self, channel: str) -> Port:
        return self.ports.get(channel) or Port()

    def push_soon(self, member_id: int, render: Callable[[Translator], Reply]) -> None:
        """Push in the background: the request that caused it (an invitee's check-in) must not
        wait for another person's app (WeChat may take seconds, Telegram rate-limits)."""
        task = asyncio.create_task(self.push(member_id, render))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Wait for the background pushes started so far (shutdown, the terminal, tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def push(self, member_id: int, render: Callable[[Translator], Reply]) -> bool:
        """Tell a member something, in their language, in the newest app that can reach them.

        Best effort: a member nobody can reach (no app running, blocked the bot) is logged,
        and the caller's work stands either way.
        """
        async with self.db.reader() as session:
            member = await members.get(session, member_id)
            accounts = await members.identities_of(session, member_id)
        if member is None:
            return False
        t = Translator(pick_locale(member.locale, None, self.default_locale))
        for identity in sorted(accounts, key=lambda i: i.id, reverse=True):
            port = self.ports.get(identity.channel)
            if identity.unreachable or port is None:
                continue
            try:
                if await port.push(identity.external_id, render(t)):
                    return True
            except Exception:  # one app failing must not stop the others or the caller
                log.exception("push failed channel=%s member=%s", identity.channel, member_id)
        log.info("push not delivered member=%s", member_id)
        return False
