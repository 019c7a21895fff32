"""/api/communities: list, read, create or change (PUT), archive (DELETE)."""

from __future__ import annotations

from aiohttp import web

from bot.admin import communities
from bot.http.common import core_of, json_answer, read_json_object


async def list_communities(request: web.Request) -> web.StreamResponse:
    return json_answer(await communities.list_communities(core_of(request).services))


async def get_community(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await communities.get_community(services, request.match_info["slug"]))


async def put_community(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    data = await read_json_object(request)
    saved, created = await communities.save_community(services, request.match_info["slug"], data)
    return json_answer(saved, 201 if created else 200)


async def archive_community(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await communities.archive_community(services, request.match_info["slug"]))


def setup(api: web.Application) -> None:
    api.router.add_get("/communities", list_communities)
    api.router.add_get("/communities/{slug}", get_community)
    api.router.add_put("/communities/{slug}", put_community)
    api.router.add_delete("/communities/{slug}", archive_community)
