"""What the core may ask of a chat app beyond answering the message in hand.

Each capability is a small protocol; a channel's sender implements the ones its app has, and
`Senders` hands out a "can't" stand-in for the others. Arguments are plain values (ids, codes,
texts already translated), so the implementations in bot/channels need nothing from storage
or handlers: what a push means, and what to record about it, stays in the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from bot.core.messages import Reply
from storage.cache import Cache, Keys, LockTimeout

__all__ = [
    "Cache",
    "Delivery",
    "GroupAccess",
    "GroupPoster",
    "InviteLinks",
    "Keys",
    "LockTimeout",
    "MediaFetcher",
    "Pusher",
    "Senders",
]


@dataclass(frozen=True)
class Delivery:
    """What became of one push; the outbox decides from it whether and when to try again."""

    sent: bool
    reason: str = ""  # why not, short and stable: "blocked", "outside-window", "error", ...
    final: bool = False  # retrying cannot help (blocked, unsubscribed, no such chat)
    hold: bool = False  # wait until the person writes again (WeChat's 48-hour window)
    retry_after: float | None = None  # seconds the app asked us to wait (Telegram 429)
    message_id: str | None = None  # the app's id of what was sent, for later edits

    @classmethod
    def ok(cls, message_id: str | None = None) -> Delivery:
        return cls(True, message_id=message_id)

    @classmethod
    def cannot(cls, reason: str) -> Delivery:
        return cls(False, reason, final=True)


@runtime_checkable
class Pusher(Protocol):
    """Sends to one person's private chat in the app (`chat_id`: openid, Telegram user id)."""

    channel: str

    async def send(self, chat_id: str, reply: Reply) -> Delivery: ...


@runtime_checkable
class GroupPoster(Protocol):
    """Posts into a group chat and edits what it posted (a live counter, a staff card)."""

    channel: str

    async def post(self, chat_id: str, reply: Reply) -> Delivery: ...

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> Delivery: ...


@runtime_checkable
class InviteLinks(Protocol):
    """How a member's invite looks in the app: a deep link (Telegram) or a QR image (WeChat)."""

    channel: str

    async def invite_link(self, member_id: int, payload: str) -> InviteLink | None: ...

    def share_url(self, url: str, text: str) -> str | None: ...


@runtime_checkable
class GroupAccess(Protocol):
    """Letting one person into (or out of) a group chat of the app."""

    channel: str

    async def personal_link(self, chat_id: str, name: str, hours: int) -> str | None: ...

    async def revoke_link(self, chat_id: str, link: str) -> None: ...

    async def answer_join_request(self, chat_id: str, user_id: str, approve: bool) -> bool: ...

    async def remove(self, chat_id: str, user_id: str) -> None: ...


@runtime_checkable
class MediaFetcher(Protocol):
    """Downloads what a person sent (a photo) by the app's id for it: None when the app has
    no such file, cannot give it, or it is larger than `limit` bytes."""

    channel: str

    async def fetch_media(self, media_id: str, limit: int) -> bytes | None: ...


@dataclass(frozen=True)
class InviteLink:
    """A member's invite in one app: `kind` "link" (open it) or "qr" (an image to scan)."""

    kind: str
    url: str


class _Cannot:
    """Every capability answered "no": what an app that is not running can do."""

    def __init__(self, channel: str) -> None:
        self.channel = channel

    async def send(self, chat_id: str, reply: Reply) -> Delivery:
        return Delivery.cannot("channel-off")

    async def post(self, chat_id: str, reply: Reply) -> Delivery:
        return Delivery.cannot("channel-off")

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> Delivery:
        return Delivery.cannot("channel-off")

    async def invite_link(self, member_id: int, payload: str) -> InviteLink | None:
        return None

    def share_url(self, url: str, text: str) -> str | None:
        return None

    async def personal_link(self, chat_id: str, name: str, hours: int) -> str | None:
        return None

    async def fetch_media(self, media_id: str, limit: int) -> bytes | None:
        return None

    async def revoke_link(self, chat_id: str, link: str) -> None:
        return None

    async def answer_join_request(self, chat_id: str, user_id: str, approve: bool) -> bool:
        return False

    async def remove(self, chat_id: str, user_id: str) -> None:
        return None


@dataclass
class Senders:
    """The capabilities of every configured app, by channel name, built once from settings
    (bot.app.build_senders) and shared by the server, the worker and the CLI."""

    pushers: dict[str, Pusher] = field(default_factory=dict)
    posters: dict[str, GroupPoster] = field(default_factory=dict)
    invites: dict[str, InviteLinks] = field(default_factory=dict)
    access: dict[str, GroupAccess] = field(default_factory=dict)
    media: dict[str, MediaFetcher] = field(default_factory=dict)
    by_channel: dict[str, Any] = field(default_factory=dict)  # the sender objects themselves

    def add(self, sender: object) -> None:
        """Register whatever capabilities `sender` has under its channel name."""
        channel = str(getattr(sender, "channel", ""))
        self.by_channel[channel] = sender
        if isinstance(sender, Pusher):
            self.pushers[channel] = sender
        if isinstance(sender, GroupPoster):
            self.posters[channel] = sender
        if isinstance(sender, InviteLinks):
            self.invites[channel] = sender
        if isinstance(sender, GroupAccess):
            self.access[channel] = sender
        if isinstance(sender, MediaFetcher):
            self.media[channel] = sender

    def pusher(self, channel: str) -> Pusher:
        return self.pushers.get(channel) or _Cannot(channel)

    def poster(self, channel: str) -> GroupPoster:
        return self.posters.get(channel) or _Cannot(channel)

    def invite_links(self, channel: str) -> InviteLinks:
        return self.invites.get(channel) or _Cannot(channel)

    def group_access(self, channel: str) -> GroupAccess:
        return self.access.get(channel) or _Cannot(channel)

    def media_fetcher(self, channel: str) -> MediaFetcher:
        return self.media.get(channel) or _Cannot(channel)

    async def close(self) -> None:
        """Close every sender that holds connections (HTTP sessions, the Telegram bot)."""
        for sender in list(self.by_channel.values()):
            close = getattr(sender, "close", None)
            if close is not None:
                await close()
