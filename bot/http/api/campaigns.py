"""/api/campaigns: create (or, with dry_run, preview), list, and read one with its results."""

from __future__ import annotations

from aiohttp import web

from bot.admin import campaigns
from bot.http.common import core_of, json_answer, read_json_object


async def create_campaign(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    data = await read_json_object(request)
    answer, created = await campaigns.create(services, data)
    return json_answer(answer, 201 if created else 200)


async def list_campaigns(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    limit = campaigns.page_size(request.query.get("limit"))
    return json_answer(await campaigns.listing(services, limit))


async def get_campaign(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    number = campaigns.campaign_id(request.match_info["id"])
    return json_answer(await campaigns.show(services, number))


def setup(api: web.Application) -> None:
    api.router.add_post("/campaigns", create_campaign)
    api.router.add_get("/campaigns", list_campaigns)
    api.router.add_get("/campaigns/{id}", get_campaign)
