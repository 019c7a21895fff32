"""The shop's routes, each signed with MEMBERBOT_SHOP_SECRET: POST /api/orders, /api/events."""

from __future__ import annotations

from aiohttp import web

from bot.admin import events, orders
from bot.http.auth import signed
from bot.http.common import core_of, json_answer, read_json_object


@signed
async def post_order(request: web.Request) -> web.StreamResponse:
    """A paid order or a refund (whole, or partial with a refund_id), applied once."""
    data = await read_json_object(request)
    return json_answer(await orders.post_order(core_of(request).services, data))


@signed
async def post_event(request: web.Request) -> web.StreamResponse:
    """Another deed (a review, a share), credited once per event_id within the daily cap."""
    data = await read_json_object(request)
    return json_answer(await events.post_event(core_of(request).services, data))


def setup(app: web.Application) -> None:
    app.router.add_post("/api/orders", post_order)
    app.router.add_post("/api/events", post_event)
