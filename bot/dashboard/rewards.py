"""The dashboard's points mall: each reward with its stock, redemptions and vouchers by state."""

from __future__ import annotations

from aiohttp import web

from bot.dashboard.render import PAGE_SIZE, page_number, render
from bot.http.common import core_of
from storage import console


async def rewards_page(request: web.Request) -> web.Response:
    services = core_of(request).services
    async with services.db.reader() as session:
        found = await console.rewards(
            session, services.clock.now(), page_number(request), PAGE_SIZE
        )
    context = {"page": "rewards", "rewards": found, "pager_query": ""}
    return await render(request, "rewards.html", context)


def setup(dash: web.Application) -> None:
    dash.router.add_get("/rewards", rewards_page, name="rewards")
