"""Maps what a person said (command, keyword, menu key, button) to an action and runs it.

The tables below are the SPEC's: Telegram commands, zh_CN/zh_TW/en keywords and WeChat menu keys.
Feature modules register their actions on their own `Router`; the `Dispatcher` combines them
and wraps every call in the middlewares.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

from bot.core.context import Context, Services
from bot.core.dialogs import Dialogs
from bot.core.i18n import Translator, pick_locale
from bot.core.messages import Inbound, Reply

Handler = Callable[[Inbound, Context], Awaitable[Reply]]
Next = Callable[[Inbound, Context], Awaitable[Reply | None]]
Middleware = Callable[[Next, Inbound, Context], Awaitable[Reply | None]]

UNKNOWN = "unknown"

COMMANDS = {
    "start": "help",
    "help": "help",
    "menu": "help",
    "checkin": "checkin",
    "points": "points",
    "tier": "tier",
    "invite": "invite",
    "communities": "communities",
    "join": "join",
    "leave": "leave",
    "claim": "claim",
    "rewards": "rewards",
    "redeem": "redeem",
    "complain": "complain",
    "tickets": "tickets",
    "ticket": "ticket",
    "link": "link",
    "lang": "lang",
    "birthday": "birthday",
}

KEYWORDS = {
    "帮助": "help",
    "幫助": "help",
    "菜单": "help",
    "選單": "help",
    "help": "help",
    "menu": "help",
    "签到": "checkin",
    "簽到": "checkin",
    "checkin": "checkin",
    "积分": "points",
    "積分": "points",
    "points": "points",
    "等级": "tier",
    "等級": "tier",
    "会员": "tier",
    "會員": "tier",
    "tier": "tier",
    "邀请": "invite",
    "邀請": "invite",
    "邀请码": "invite",
    "邀請碼": "invite",
    "invite": "invite",
    "社群": "communities",
    "communities": "communities",
    "加入": "join",
    "join": "join",
    "退出": "leave",
    "leave": "leave",
    "抢": "claim",
    "搶": "claim",
    "claim": "claim",
    "兑换": "redeem",
    "兌換": "redeem",
    "redeem": "redeem",
    "rewards": "rewards",
    "投诉": "complain",
    "投訴": "complain",
    "complain": "complain",
    "我的投诉": "tickets",
    "我的投訴": "tickets",
    "tickets": "tickets",
    "绑定": "link",
    "綁定": "link",
    "link": "link",
    "语言": "lang",
    "語言": "lang",
    "lang": "lang",
    "language": "lang",
    "生日": "birthday",
    "birthday": "birthday",
}

MENU_KEYS = {
    "HELP": "help",
    "CHECKIN": "checkin",
    "POINTS": "points",
    "TIER": "tier",
    "INVITE": "invite",
    "COMMUNITIES": "communities",
    "JOIN": "join",
    "LEAVE": "leave",
    "REWARDS": "rewards",
    "COMPLAIN": "complain",
    "LINK": "link",
    "LANG": "lang",
}

_BY_LENGTH = sorted(KEYWORDS, key=len, reverse=True)
_LINK_CODE = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class Route:
    action: str
    args: str


def resolve(msg: Inbound) -> Route:
    """Which action a message asks for, and the rest of it as arguments."""
    if msg.menu_key:
        key, _, args = msg.menu_key.partition(":")
        return Route(MENU_KEYS.get(key.upper(), UNKNOWN), args.strip())
    if msg.media_id and not msg.text:
        return Route("media", "")
    if msg.command is not None:
        return Route(COMMANDS.get(msg.command.lower(), UNKNOWN), msg.args.strip())
    text = msg.text.strip()
    if text.startswith("/"):
        head, _, rest = text[1:].partition(" ")
        command = head.split("@", 1)[0].lower()
        return Route(COMMANDS.get(command, UNKNOWN), rest.strip())
    lowered = text.lower()
    for keyword in _BY_LENGTH:
        if lowered.startswith(keyword):
            rest = text[len(keyword) :]
            # English keywords need a word boundary ("pointsy" is not "points");
            # Chinese ones are often typed with the argument glued on ("抢A1B2").
            if keyword.isascii() and rest and not rest[0].isspace():
                continue
            return Route(KEYWORDS[keyword], rest.strip())
    if _LINK_CODE.match(text):
        return Route("link", text)
    return Route(UNKNOWN, text)


class Router:
    """A feature module's actions: `@router.action("checkin")`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.actions: dict[str, Handler] = {}

    def action(self, *names: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for name in names:
                self.actions[name] = handler
            return handler

        return register


class Dispatcher:
    """All routers plus the middleware chain; `handle` is the one entry every channel uses."""

    def __init__(
        self,
        services: Services,
        routers: Iterable[Router],
        middlewares: Iterable[Middleware],
        fallback: Handler,
    ) -> None:
        self.services = services
        self.actions: dict[str, Handler] = {}
        for router in routers:
            for name, handler in router.actions.items():
                if name in self.actions:
                    raise ValueError(f"action {name!r} registered twice")
                self.actions[name] = handler
        self.middlewares = list(middlewares)
        self.fallback = fallback

    async def handle(self, msg: Inbound) -> Reply | None:
        """Answer one inbound message; None means it is deliberately not answered (flood)."""
        route = resolve(msg)
        settings = self.services.settings
        locale = pick_locale(None, msg.locale_hint, settings.default_locale)
        ctx = Context(self.services, locale, Translator(locale), action=route.action)
        if route.args != msg.args:
            msg = replace(msg, args=route.args)
        handler = self.actions.get(route.action, self._answer_or_fallback)
        call: Next = handler
        for middleware in reversed(self.middlewares):
            call = _bind(middleware, call)
        self.services.metrics.requests.labels(msg.channel).inc()
        started = time.perf_counter()
        try:
            return await call(msg, ctx)
        finally:
            self.services.metrics.latency.labels(route.action).observe(
                time.perf_counter() - started
            )

    async def _answer_or_fallback(self, msg: Inbound, ctx: Context) -> Reply:
        """Text that is no command: the answer to a question the member was asked, if any."""
        action = await Dialogs(ctx.services.cache).pending(ctx.me.id)
        handler = self.actions.get(action) if action else None
        if handler is None:
            return await self.fallback(msg, ctx)
        ctx.action = action or ctx.action
        return await handler(replace(msg, args=msg.text.strip()), ctx)


def _bind(middleware: Middleware, inner: Next) -> Next:
    async def call(msg: Inbound, ctx: Context) -> Reply | None:
        return await middleware(inner, msg, ctx)

    return call
