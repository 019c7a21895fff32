"""The dashboard's campaigns: each with its results (recipients, sent, failed, opted out,
redeemed); a campaign's page with its texts, segment and recipients."""

from __future__ import annotations

from aiohttp import web

from bot.dashboard import words
from bot.dashboard.render import PAGE_SIZE, not_found, page_number, render
from bot.http.common import core_of
from storage import console

ID_DIGITS = 18


async def campaigns_page(request: web.Request) -> web.Response:
    async with core_of(request).services.db.reader() as session:
        found = await console.campaigns(session, page_number(request), PAGE_SIZE)
    context = {
        "page": "campaigns",
        "campaigns": found,
        "states": words.CAMPAIGN_STATES,
        "pager_query": "",
    }
    return await render(request, "campaigns.html", context)


async def campaign_page(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    found = None
    if raw.isascii() and raw.isdigit() and len(raw) <= ID_DIGITS:
        async with core_of(request).services.db.reader() as session:
            found = await console.campaign(session, int(raw))
            if found is not None:
                people = await console.recipients(
                    session, found.campaign.id, page_number(request), PAGE_SIZE
                )
    if found is None:
        return await not_found(request, "campaigns", raw)
    context = {
        "page": "campaigns",
        "c": found,
        "recipients": people,
        "states": words.CAMPAIGN_STATES,
        "outcomes": words.RECIPIENT_STATES,
        "outcome": words.recipient_state,
        "voucher_states": words.VOUCHER_STATES,
        "pager_query": "",
    }
    return await render(request, "campaign.html", context)


def setup(dash: web.Application) -> None:
    dash.router.add_get("/campaigns", campaigns_page, name="campaigns")
    dash.router.add_get("/campaigns/{id}", campaign_page, name="campaign")
