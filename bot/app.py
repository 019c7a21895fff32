"""The composition root: settings → services, senders, dispatcher.

`build_core` needs no web server: the shell, the CLI and a worker use it as they are; `memberbot
serve` wraps it in `bot.http.server.create_app`. Sending is built here from settings
(`build_senders`), so every process sends the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.core.clock import Clock, SystemClock
from bot.core.context import Services
from bot.core.dispatcher import Dispatcher
from bot.core.middleware import DEFAULT_MIDDLEWARES
from bot.core.ports import Cache, Senders
from bot.jobs.env import JobEnv
from bot.settings import Settings, load_rules
from handlers import FALLBACK, HOOKS, ROUTERS
from handlers.nudges import TEXTS
from storage.cache import Keys, make_cache
from storage.db import Database
from storage.migrate import upgrade

log = logging.getLogger("memberbot")


@dataclass
class Core:
    """Everything a door (HTTP, terminal, worker, bench) needs to answer members; `jobs` is
    what the scheduler and the outbox sender need (whoever runs them: serve, worker, CLI)."""

    services: Services
    dispatcher: Dispatcher
    jobs: JobEnv

    async def close(self) -> None:
        services = self.services
        try:
            await services.senders.close()
        finally:
            try:
                await services.cache.close()
            finally:
                await services.db.close()


def build_senders(settings: Settings, cache: Cache, clock: Clock) -> Senders:
    """A sender for every app that is configured (imported only then: they load slowly)."""
    senders = Senders()
    if settings.telegram_token:
        from bot.channels.telegram_api import TelegramSender

        senders.add(
            TelegramSender(settings.telegram_token, settings.telegram_api_base, cache, clock)
        )
    if settings.wechat_token:
        from bot.channels.wechat_api import WeChatAPI
        from bot.channels.wechat_sender import WeChatSender

        api = WeChatAPI(
            settings.wechat_api_base, settings.wechat_appid, settings.wechat_secret, cache, clock
        )
        senders.add(WeChatSender(api, cache))
    return senders


async def build_core(
    settings: Settings,
    *,
    clock: Clock | None = None,
    keys: Keys | None = None,
    migrate_sqlite: bool = True,
    cache: Cache | None = None,
) -> Core:
    """Assemble the core; an SQLite database is migrated on the spot (nobody runs a DBA there).

    `cache` shares one in-process cache between two cores (tests of two processes)."""
    rules = load_rules(settings.rules_path())
    db = Database(settings.database_url)
    if migrate_sqlite and db.dialect == "sqlite":
        await upgrade(db)
    cache = cache or make_cache(settings.redis_url, keys or Keys(settings.redis_prefix))
    clock = clock or SystemClock()
    senders = build_senders(settings, cache, clock)
    services = Services(settings, rules, db, cache, clock, senders=senders)
    return Core(
        services, Dispatcher(services, ROUTERS, DEFAULT_MIDDLEWARES, FALLBACK), job_env(services)
    )


def job_env(services: Services) -> JobEnv:
    """The jobs' environment with the features' hooks; its outbox sender is this process's
    (`pushes.settle()` sends through it)."""
    env = JobEnv(services, services.senders, TEXTS)
    for job, hook in HOOKS:
        env.hooks.add(job, hook)
    services.pushes.sender = env.sender
    return env
