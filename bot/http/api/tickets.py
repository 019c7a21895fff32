"""/api/tickets: the complaints desk for support staff's tools (list, read, assign, reply,
wait, resolve)."""

from __future__ import annotations

from aiohttp import web

from bot.admin import tickets
from bot.http.common import Handler, core_of, json_answer, read_json_object


async def list_tickets(request: web.Request) -> web.StreamResponse:
    state = request.query.get("state")
    return json_answer(await tickets.list_tickets(core_of(request).services, state))


async def get_ticket(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await tickets.show_ticket(services, request.match_info["number"]))


def _step(action: tickets.Step) -> Handler:
    async def run(request: web.Request) -> web.StreamResponse:
        data = await read_json_object(request)
        services = core_of(request).services
        return json_answer(await action(services, request.match_info["number"], data))

    return run


def setup(api: web.Application) -> None:
    api.router.add_get("/tickets", list_tickets)
    api.router.add_get("/tickets/{number}", get_ticket)
    for name, action in tickets.STEPS.items():
        api.router.add_post(f"/tickets/{{number}}/{name}", _step(action))
