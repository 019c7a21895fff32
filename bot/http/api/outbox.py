"""/api/outbox: pushes waiting, sent and failed (`?state=`, `?limit=`, `?before=ID`)."""

from __future__ import annotations

from aiohttp import web

from bot.admin import outbox
from bot.http.common import core_of, json_answer


async def list_outbox(request: web.Request) -> web.StreamResponse:
    query = request.query
    pushes = await outbox.list_pushes(
        core_of(request).services, query.get("state"), query.get("limit"), query.get("before")
    )
    return json_answer(pushes)


def setup(api: web.Application) -> None:
    api.router.add_get("/outbox", list_outbox)
