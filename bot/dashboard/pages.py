"""The dashboard's pages: overview (the figures and charts), communities, outbox."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.admin import stats
from bot.core.i18n import Translator
from bot.dashboard import charts
from bot.dashboard.i18n import translator
from bot.dashboard.render import period_of, render
from bot.http.common import core_of
from handlers.tiers import tier_label
from storage import outbox_reads

OUTBOX_STATES = ("failed", "pending", "sent")


def tier_names(t: Translator, tiers: Any) -> dict[str, str]:
    return {tier: tier_label(t, tier) for tier in tiers}


async def overview(request: web.Request) -> web.Response:
    services = core_of(request).services
    figures = await stats.figures(services, period_of(request))
    t = await translator(request)
    members = figures["members"]
    names = tier_names(t, members["by_tier"])
    svgs = {
        "checkins": charts.checkins_per_day(t, figures["checkins"]["per_day"]),
        "tiers": charts.members_by_tier(t, members["by_tier"], names),
        "channels": charts.members_by_channel(t, members["by_channel"]),
        "points": charts.points_moved(t, figures["points"]),
        "spend": charts.spend_per_member(t, figures["orders"]["by_tier"], names),
        "retention": charts.retention(t, members["retention"]),
    }
    context = {"page": "overview", "s": figures, "charts": svgs, "tier_names": names}
    return await render(request, "overview.html", context)


async def communities(request: web.Request) -> web.Response:
    services = core_of(request).services
    found = await stats.communities(services, period_of(request))
    context = {"page": "communities", "communities": found}
    return await render(request, "communities.html", context)


async def outbox_page(request: web.Request) -> web.Response:
    state = request.query.get("state", "failed")
    if state not in OUTBOX_STATES:
        state = "failed"
    async with core_of(request).services.db.reader() as session:
        pushes = await outbox_reads.listing(session, state, limit=100)
    context = {"page": "outbox", "state": state, "states": OUTBOX_STATES, "pushes": pushes}
    return await render(request, "outbox.html", context)


def setup(dash: web.Application) -> None:
    dash.router.add_get("/", overview, name="overview")
    dash.router.add_get("/communities", communities, name="communities")
    dash.router.add_get("/outbox", outbox_page, name="outbox")
