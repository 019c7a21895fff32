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
        # Per action, the whole chain (built once, not six closures per message), with the
        # handler and middlewares it was built of: a swapped handler gets a new one.
        self._chains: dict[str, tuple[Handler, tuple[Middleware, ...], Handler]] = {}
        self._translators: dict[str, Translator] = {}

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
            self._translator(locale),
            action=route.action,
            vocabulary=self.vocabulary,
        )
        if route.args != msg.args:
            msg = replace(msg, args=route.args)
        metrics = self.services.metrics
        metrics.requests_of(msg.channel).inc()
        started = time.perf_counter()
        try:
            reply = await self._chain(route.action)(msg, ctx)
            # After every middleware: a refusal turned into words ends with it too.
            reply = await with_notice(msg, ctx, reply)
        finally:
            metrics.latency_of(route.action).observe(time.perf_counter() - started)
        return reply

    def _translator(self, locale: str) -> Translator:
        found = self._translators.get(locale)
        if found is None:
            found = self._translators[locale] = Translator(locale)
        return found

    def _chain(self, name: str) -> Handler:
        """`_action(name)` inside the middlewares; the same object for as long as they are."""
        handler = self.actions.get(name, self._answer_or_fallback)
        built = self._chains.get(name)
        if built is None or built[0] != handler or built[1] is not self.middlewares:
            whole = chain(self._action(name), self.middlewares)
            if len(self._chains) > 1024:  # names come from the vocabulary: a bound all the same
                self._chains.clear()
            built = self._chains[name] = (handler, self.middlewares, whole)
        return built[2]

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
