"""/api/roles: list, grant (POST), revoke (DELETE)."""

from __future__ import annotations

from aiohttp import web

from bot.admin import roles
from bot.http.common import core_of, json_answer, read_json_object


async def list_roles(request: web.Request) -> web.StreamResponse:
    return json_answer(await roles.list_roles(core_of(request).services))


async def grant_role(request: web.Request) -> web.StreamResponse:
    data = await read_json_object(request)
    held, granted = await roles.grant_role(core_of(request).services, data)
    return json_answer(held, 201 if granted else 200)


async def revoke_role(request: web.Request) -> web.StreamResponse:
    data = await read_json_object(request)
    return json_answer(await roles.revoke_role(core_of(request).services, data))


def setup(api: web.Application) -> None:
    api.router.add_get("/roles", list_roles)
    api.router.add_post("/roles", grant_role)
    api.router.add_delete("/roles", revoke_role)
