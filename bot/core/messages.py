"""The message model every channel translates into and out of."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from bot.core.events import Event

MAX_TEXT = 2000
# Line/paragraph separators and bidi embeddings/overrides/isolates: they can make echoed text
# read differently from what was sent.
_INVISIBLE = frozenset("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


EXTERNAL_ID_MAX = 128  # the width of identities.external_id and outbox.chat_id


def usable_id(value: str) -> bool:
    """An id an app can send: 1 to 128 characters, no control characters or lone surrogates
    (PostgreSQL refuses NUL and over-long values where SQLite stores them)."""
    return 1 <= len(value) <= EXTERNAL_ID_MAX and not any(
        unicodedata.category(ch) in ("Cc", "Cs") for ch in value
    )


@dataclass(frozen=True)
class Inbound:
    """One thing a person said or tapped, whatever app it came from."""

    channel: str  # wechat, telegram, console
    external_id: str  # openid, Telegram user id, console name
    chat_id: str = ""
    text: str = ""
    command: str | None = None  # "checkin" for /checkin; set by channels that have commands
    args: str = ""
    menu_key: str | None = None  # WeChat CLICK EventKey or a button's action code
    locale_hint: str | None = None  # what the app says the person's language is
    referral: str | None = None  # deep-link / QR payload, e.g. "ref_ABC123"
    display_name: str | None = None
    media_id: str | None = None
    is_group: bool = False
    message_id: str | None = None
    event: Event | None = None  # not a message: something the app reported (see events.py)
    reply_to: str | None = None  # in a group: the app's id of the bot's message this answers


@dataclass(frozen=True)
class Button:
    """An option under a reply; `action` is a short code any process can interpret.

    A button with a `url` opens it instead (Telegram only); apps without buttons show the
    link in the text, so such buttons are not numbered there."""

    label: str
    action: str = ""
    url: str | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = field(default_factory=tuple)
    private: bool = False  # holds a member's own data: never show it in a group
    photo: str | None = None  # an image to send with the text: a URL, an app's file id, a path
    # A few words answering a button press where the app can show them (Telegram's toast);
    # the text still goes to the person. Not kept in pushes.
    toast: str | None = None
    # With a toast to a button in a group: the toast also opens the person's private chat
    # with the bot (Telegram: the button's deep link), for someone the bot cannot write to yet.
    open_private: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form, for pushes kept in the outbox."""
        data: dict[str, Any] = {"text": self.text}
        if self.buttons:
            data["buttons"] = [[b.label, b.action, b.url] for b in self.buttons]
        if self.private:
            data["private"] = True
        if self.photo:
            data["photo"] = self.photo
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        buttons = tuple(
            Button(str(label), str(action), url) for label, action, url in data.get("buttons", ())
        )
        return cls(str(data["text"]), buttons, bool(data.get("private")), data.get("photo"))


def options(reply: Reply) -> tuple[Button, ...]:
    """The buttons that stand for an action (not a link): what a typed number can pick."""
    return tuple(b for b in reply.buttons if b.url is None)


def numbered_text(reply: Reply) -> str:
    """Text, then buttons as numbered options, for apps without buttons (terminal, WeChat)."""
    choices = options(reply)
    if not choices:
        return reply.text
    numbered = "  ".join(f"[{i}] {b.label}" for i, b in enumerate(choices, 1))
    return f"{reply.text}\n{numbered}"


def clean_text(raw: str, limit: int = MAX_TEXT) -> str:
    """Drop control characters and text-direction overrides, cap the length.

    Other format characters stay: emoji sequences are joined by U+200D.
    """
    kept = []
    for ch in raw[: limit * 2]:
        if ch in "\n\t":
            kept.append(" " if ch == "\t" else ch)
        elif unicodedata.category(ch) not in ("Cc", "Cs", "Co", "Cn") and ch not in _INVISIBLE:
            kept.append(ch)
    return "".join(kept).strip()[:limit]
