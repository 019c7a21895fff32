"""GET /api/stats?days=N: the dashboard's figures as JSON."""

from __future__ import annotations

from aiohttp import web

from bot.admin import stats
from bot.http.common import core_of, json_answer


async def get_stats(request: web.Request) -> web.StreamResponse:
    days = stats.period_days(request.query.get("days"))
    return json_answer(await stats.figures(core_of(request).services, days))


def setup(api: web.Application) -> None:
    api.router.add_get("/stats", get_stats)
