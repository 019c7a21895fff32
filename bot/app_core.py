"""Composition of the core: settings, rules, storage, cache, clock and the dispatcher."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.core.clock import Clock, SystemClock
from bot.core.context import Services
from bot.core.middleware import DEFAULT_MIDDLEWARES
from bot.core.router import Dispatcher
from bot.settings import Settings, load_rules
from handlers import FALLBACK, ROUTERS
from storage import ledger
from storage.cache import Keys, make_cache
from storage.db import Database
from storage.migrate import upgrade

log = logging.getLogger("memberbot")


@dataclass
class Core:
    """Everything a door (HTTP, terminal, bench) needs to answer members."""

    services: Services
    dispatcher: Dispatcher

    async def close(self) -> None:
        try:
            await self.services.outreach.settle()
        finally:
            await self._close_stores()

    async def _close_stores(self) -> None:
        try:
            await self.services.cache.close()
        finally:
            await self.services.db.close()


async def build_core(
    settings: Settings,
    *,
    clock: Clock | None = None,
    keys: Keys | None = None,
    migrate_sqlite: bool = True,
) -> Core:
    """Assemble the core; an SQLite database is migrated on the spot (nobody runs a DBA there)."""
    rules = load_rules(settings.rules_path())
    db = Database(settings.database_url)
    if migrate_sqlite and db.dialect == "sqlite":
        await upgrade(db)
    services = Services(
        settings=settings,
        rules=rules,
        db=db,
        cache=make_cache(settings.redis_url, keys),
        clock=clock or SystemClock(),
    )
    return Core(services, Dispatcher(services, ROUTERS, DEFAULT_MIDDLEWARES, FALLBACK))


async def sweep_expired_points(services: Services) -> int:
    """Expire every lot past its date (the ledger gets an entry per lot); returns points expired."""
    now = services.clock.now()
    async with services.db.reader() as session:
        due = await ledger.members_with_due_lots(session, now)
    total = 0
    for member_id in due:
        async with services.db.transaction() as session:
            total += await ledger.expire_due(session, member_id, now)
    return total


async def expiry_loop(services: Services, every: float = 3600) -> None:
    """Hourly sweep; several processes may run it, the ledger's keys keep it exactly-once."""
    while True:
        try:
            expired = await sweep_expired_points(services)
            if expired:
                log.info("points expired total=%d", expired)
        except Exception:
            log.exception("expiry sweep failed")
        await asyncio.sleep(every)
