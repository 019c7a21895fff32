"""/api/members/{channel}/{external_id}/export and DELETE /api/members/...: a member's data."""

from __future__ import annotations

from aiohttp import web

from bot.admin import privacy
from bot.http.common import core_of, json_answer


def _account(request: web.Request) -> tuple[str, str]:
    return request.match_info["channel"], request.match_info["external_id"]


async def export_member(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await privacy.export_member(services, *_account(request)))


async def erase_member(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await privacy.erase_member(services, *_account(request)))


def setup(api: web.Application) -> None:
    base = "/members/{channel}/{external_id}"
    api.router.add_get(base + "/export", export_member)
    api.router.add_delete(base, erase_member)
