"""The one entry every door uses: resolve a message to an action and run it in the middlewares."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import replace

from bot.core.context import Context, Services
from bot.core.dialogs import Dialogs
from bot.core.first_contact import with_notice
from bot.core.i18n import Translator, pick_locale
from bot.core.messages import Inbound, Reply, usable_id
from bot.core.router import Handler, Middleware, Router, Vocabulary, chain

log = logging.getLogger("memberbot.dispatcher")


class Dispatcher:
    """All routers plus the middleware chain; `handle` answers one inbound message."""

    def __init__(
        self,
        services: Services,
        routers: Iterable[Router],
        middlewares: Iterable[Middleware],
        fallback: Handler,
    ) -> None:
        self.services = services
        self.vocabulary = Vocabulary(routers)
        # By name, so a test (or a future feature flag) can swap one handler.
        self.actions: dict[str, Handler] = {
            name: action.handler for name, action in self.vocabulary.actions.items()
        }
        self.middlewares = tuple(middlewares)
        self.fallback = fallback

    async def handle(self, msg: Inbound) -> Reply | None:
        """Answer one inbound message; None means it is deliberately not answered."""
        if not (usable_id(msg.external_id) and (not msg.chat_id or usable_id(msg.chat_id))):
            # Same on every database: no app sends such ids, so nobody is there to answer.
            log.warning("inbound dropped channel=%s: an id no app sends", msg.channel)
            return None
        route = self.vocabulary.resolve(msg)
        settings = self.services.settings
        locale = pick_locale(None, msg.locale_hint, settings.default_locale)
        ctx = Context(
            self.services,
            locale,
            Translator(locale),
            action=route.action,
            vocabulary=self.vocabulary,
        )
        if route.args != msg.args:
            msg = replace(msg, args=route.args)
        self.services.metrics.requests.labels(msg.channel).inc()
        started = time.perf_counter()
        try:
            reply = await chain(self._action(route.action), self.middlewares)(msg, ctx)
            # After every middleware: a refusal turned into words ends with it too.
            reply = await with_notice(msg, ctx, reply)
        finally:
            self.services.metrics.latency.labels(route.action).observe(
                time.perf_counter() - started
            )
        return reply

    def _action(self, name: str) -> Handler:
        handler = self.actions.get(name)
        if handler is None:
            return self._answer_or_fallback
        action = self.vocabulary.handler(name)
        return chain(handler, action.middlewares) if action and action.middlewares else handler

    async def _answer_or_fallback(self, msg: Inbound, ctx: Context) -> Reply | None:
        """Text that is no command: the answer to a question the member was asked, if any."""
        action = await Dialogs(ctx.services.cache).pending(ctx.me.id)
        handler = self._action(action) if action and action in self.actions else None
        if handler is None:
            return await self.fallback(msg, ctx)
        ctx.action = action or ctx.action
        return await handler(replace(msg, args=msg.text.strip()), ctx)
