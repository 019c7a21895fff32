"""What the apps tell us besides messages, as core events a handler decides on.

An adapter turns a Telegram `chat_member` update or a WeChat `unsubscribe` into one of these,
puts it on an `Inbound` (`event=`) and hands it to the dispatcher like any message, so the same
middlewares (member lookup, language, errors, metrics) run around it. Each event names the
action that handles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Event:
    action: ClassVar[str] = ""
    # True: the person becomes a member at once, like on a first message. False: the handler
    # gets the member if there is one (ctx.member may be None) and decides itself.
    creates_member: ClassVar[bool] = False


@dataclass(frozen=True)
class JoinedGroup(Event):
    """The person is now in a group chat; `link` is the invite link they came in with."""

    action: ClassVar[str] = "event:joined-group"
    group_id: str
    link: str | None = None


@dataclass(frozen=True)
class LeftGroup(Event):
    """The person left a group chat or was removed from it."""

    action: ClassVar[str] = "event:left-group"
    group_id: str


@dataclass(frozen=True)
class AskedToJoin(Event):
    """The person asked to join a group chat (Telegram join request); `reply_chat_id` is the
    private chat the app opened for answering them."""

    action: ClassVar[str] = "event:asked-to-join"
    group_id: str
    reply_chat_id: str


@dataclass(frozen=True)
class Blocked(Event):
    """The person blocked the bot: nothing may be sent to them in this app any more."""

    action: ClassVar[str] = "event:blocked"
    reason: str = "blocked"  # the app's word for it, kept on the identity ("forbidden")


@dataclass(frozen=True)
class Unblocked(Event):
    """The person unblocked or restarted the bot: pushes may resume."""

    action: ClassVar[str] = "event:unblocked"


@dataclass(frozen=True)
class Unsubscribed(Event):
    """A WeChat follower unfollowed: stop every push, erase what is kept beyond the ledger."""

    action: ClassVar[str] = "event:unsubscribed"


@dataclass(frozen=True)
class Subscribed(Event):
    """A WeChat follow (or a scan of a parametric QR code): welcome them back, pushes resume."""

    action: ClassVar[str] = "event:subscribed"
    creates_member: ClassVar[bool] = True
