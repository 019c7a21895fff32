"""Feature routers: each module declares its actions with the words that reach them.

`@router.action("checkin", commands=("checkin",), keywords={"zh_CN": ("签到",), ...},
menu="CHECKIN", label=N_("Check in"), help=N_("..."))` puts everything about one action in
one place; the `Vocabulary` built from all routers is what resolves a message, and what the
help text, Telegram's command list and the WeChat menu are made from.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.core.context import Context
from bot.core.i18n import Translator
from bot.core.messages import Inbound, Reply
from bot.settings import LOCALES

Handler = Callable[[Inbound, Context], Awaitable[Reply | None]]
Next = Callable[[Inbound, Context], Awaitable[Reply | None]]
Middleware = Callable[[Next, Inbound, Context], Awaitable[Reply | None]]

UNKNOWN = "unknown"
MEDIA = "media"
LINK_CODE = "link-code"  # a bare 6-digit number: the link module decides if it is a code
REPLY_TO_POST = "reply-to-post"  # text answering one of the bot's posts in a group
_LINK_CODE = re.compile(r"^\d{6}$")
# Said around a request without changing it: "points?", "签到！", "check-in."
_TRAILING = "?？!！.。~～,，、"
_BULLETS = "•·*"  # a help line copied whole starts with one
_LABEL_END = re.compile("[:：]")


def normal(text: str) -> str:
    """A whole message as phrases are compared: NFKC (full-width input), case, spacing and
    hyphens folded, a leading bullet and trailing punctuation dropped ("Check-in!" is
    "check in")."""
    folded = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    return " ".join(folded.split()).lstrip(_BULLETS).rstrip(_TRAILING).strip()


def help_label(line: str) -> str:
    """What a help line is about, before its colon: "My vouchers" of "My vouchers: “vouchers”"."""
    return _LABEL_END.split(line, maxsplit=1)[0].strip()


@dataclass(frozen=True)
class Action:
    """One thing a person can ask for, and every way of asking for it."""

    name: str
    handler: Handler
    commands: tuple[str, ...] = ()  # Telegram commands (also typed as "/name" anywhere)
    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # locale -> words
    menu: str | None = None  # menu key / button code (WeChat CLICK EventKey)
    label: str | None = None  # N_: the button or menu entry
    help: str | None = None  # N_: the line of the help text
    summary: str | None = None  # N_: the description in Telegram's command list
    middlewares: tuple[Middleware, ...] = ()  # the router's, run inside the global ones
    # locale -> whole messages that mean this action ("我的积分", "check in"); matched after
    # `normal`, and before keywords, so "邀请好友" is not "邀请" with the code "好友".
    phrases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Stands in for a feature not built yet ("coming soon"): the real action of that name,
    # and any word a real action claims, win over it, so building one needs no coordination.
    placeholder: bool = False
    # The handler checks, in its own statement, that the account still belongs to the member
    # it was given and reads that member's state itself (handlers/checkin.py): the member
    # this process last found for the account will do, without a lookup (see
    # storage.members.get_or_create's `known`).
    known_member: bool = False


class Router:
    """A feature module's actions; `middlewares` wrap every action of this router only."""

    def __init__(self, name: str, *, middlewares: Sequence[Middleware] = ()) -> None:
        self.name = name
        self.middlewares = tuple(middlewares)
        self.actions: list[Action] = []

    def action(
        self,
        name: str,
        *,
        commands: tuple[str, ...] = (),
        keywords: Mapping[str, tuple[str, ...]] | None = None,
        menu: str | None = None,
        label: str | None = None,
        help: str | None = None,
        summary: str | None = None,
        phrases: Mapping[str, tuple[str, ...]] | None = None,
        placeholder: bool = False,
        known_member: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.actions.append(
                Action(
                    name,
                    handler,
                    commands,
                    dict(keywords or {}),
                    menu,
                    label,
                    help,
                    summary,
                    self.middlewares,
                    dict(phrases or {}),
                    placeholder,
                    known_member,
                )
            )
            return handler

        return register


@dataclass(frozen=True)
class Route:
    action: str
    args: str


class Vocabulary:
    """Every action of every router, and the lookups from words to actions."""

    def __init__(self, routers: Iterable[Router]) -> None:
        self.actions: dict[str, Action] = {}
        self.commands: dict[str, str] = {}
        self.keywords: dict[str, str] = {}
        self.menu_keys: dict[str, str] = {}
        self.phrases: dict[str, str] = {}
        declared = [action for router in routers for action in router.actions]
        for action in sorted(declared, key=lambda a: a.placeholder):  # stable: real ones first
            self._add(action)
        self._by_length = sorted(self.keywords, key=len, reverse=True)

    def _add(self, action: Action) -> None:
        if action.name in self.actions:
            if action.placeholder:
                return
            raise ValueError(f"action {action.name!r} registered twice")
        self.actions[action.name] = action
        words = [w for found in action.keywords.values() for w in found]
        said = [w for found in action.phrases.values() for w in found]
        # What the menus show is typed back as text (WeChat and the terminal number options,
        # and people type the label instead of the number): a label in any language.
        if action.label:
            said += [action.label, *(Translator(locale)(action.label) for locale in LOCALES)]
        # Likewise what the help says a line is about ("My vouchers", "我的券").
        if action.help:
            said += [help_label(Translator(locale)(action.help)) for locale in LOCALES]
        for table, keys in (
            (self.commands, action.commands),
            (self.keywords, [w.lower() for w in words]),
            (self.menu_keys, [action.menu] if action.menu else []),
            (self.phrases, sorted({normal(w) for w in [*words, *said]})),
        ):
            for key in keys:
                if action.placeholder and table.get(key, action.name) != action.name:
                    continue
                if table.get(key, action.name) != action.name:
                    raise ValueError(f"{key!r} names both {table[key]!r} and {action.name!r}")
                table[key] = action.name

    def resolve(self, msg: Inbound) -> Route:
        """Which action a message asks for, and the rest of it as arguments."""
        if msg.event is not None:
            return Route(msg.event.action, "")
        if msg.menu_key:
            key, _, args = msg.menu_key.partition(":")
            return Route(self.menu_keys.get(key.upper(), UNKNOWN), args.strip())
        if msg.media_id and not msg.text:
            return Route(MEDIA, "")
        if msg.reply_to and msg.is_group and not msg.text.startswith("/"):
            return Route(REPLY_TO_POST, msg.text.strip())
        if msg.command is not None:
            return Route(self.commands.get(msg.command.lower(), UNKNOWN), msg.args.strip())
        text = msg.text.strip()
        if text.startswith("/"):
            head, _, rest = text[1:].partition(" ")
            command = head.split("@", 1)[0].lower()
            return Route(self.commands.get(command, UNKNOWN), rest.strip())
        return self._keyword(text)

    def _keyword(self, text: str) -> Route:
        phrase = self.phrases.get(normal(text))
        if phrase is not None:
            return Route(phrase, "")
        lowered = text.lower()
        for keyword in self._by_length:
            if lowered.startswith(keyword):
                rest = text[len(keyword) :]
                # English keywords need a word boundary ("pointsy" is not "points");
                # Chinese ones are often typed with the argument glued on ("抢A1B2").
                if keyword.isascii() and rest and not rest[0].isspace():
                    continue
                return Route(self.keywords[keyword], rest.strip())
        if _LINK_CODE.match(text):
            return Route(LINK_CODE, text)
        return Route(UNKNOWN, text)

    def listed(self, what: str) -> list[Action]:
        """Actions that declare `what` ("label", "help" or "summary"), in declaration order."""
        return [a for a in self.actions.values() if getattr(a, what)]

    def handler(self, name: str) -> Action | None:
        return self.actions.get(name)


def chain(handler: Handler, middlewares: Sequence[Middleware]) -> Next:
    """`handler` wrapped in `middlewares`, the first outermost."""
    call: Next = handler
    for middleware in reversed(middlewares):
        call = _bind(middleware, call)
    return call


def _bind(middleware: Middleware, inner: Next) -> Next:
    async def call(msg: Inbound, ctx: Context) -> Reply | None:
        return await middleware(inner, msg, ctx)

    return call
