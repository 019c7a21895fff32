"""The operators' figures for a period: shared by GET /api/stats and the dashboard."""

from __future__ import annotations

from typing import Any

from bot.admin import fields
from bot.core.clock import local_day
from bot.core.context import Services
from storage import stats

DEFAULT_DAYS, MAX_DAYS = 30, 366
PERIODS = (7, 30, 90)  # what the dashboard's selector offers


def period_days(raw: str | None) -> int:
    """`days` from a query string: 1 to 366, 30 when absent."""
    if raw is None:
        return DEFAULT_DAYS
    return fields.query_number("days", raw, 1, MAX_DAYS)


def window(services: Services, days: int) -> stats.Window:
    now = services.clock.now()
    tz = services.settings.tz
    return stats.Window(now, local_day(now, tz), days, services.settings.timezone)


async def figures(services: Services, days: int) -> dict[str, Any]:
    """Every figure of the last `days` days, under the SPEC's keys."""
    tiers = tuple(t.name for t in services.rules.tiers)
    period = window(services, days)
    # PostgreSQL: read-only transactions on one snapshot, so the figures agree with each
    # other, several at once; SQLite: one reader (storage/stats/__init__.py).
    async with stats.report(services.db) as sessions:
        return await stats.collect(sessions, period, tiers)


async def communities(services: Services, days: int) -> list[dict[str, Any]]:
    """Only the communities' figures (the dashboard's communities page)."""
    async with services.db.reader() as session:
        return await stats.communities.summary(session, window(services, days))
