"""/api/flashsales (create, list, read, claims, cancel) and /api/claims (the shop's till)."""

from __future__ import annotations

from aiohttp import web

from bot.admin import flashsales
from bot.http.common import by_key, core_of, json_answer, read_json_object


async def create_sale(request: web.Request) -> web.StreamResponse:
    data = await read_json_object(request)
    return json_answer(await flashsales.create_sale(core_of(request).services, data), 201)


async def list_sales(request: web.Request) -> web.StreamResponse:
    state = request.query.get("state")
    return json_answer(await flashsales.list_sales(core_of(request).services, state))


def setup(api: web.Application) -> None:
    api.router.add_post("/flashsales", create_sale)
    api.router.add_get("/flashsales", list_sales)
    api.router.add_get("/flashsales/{code}", by_key(flashsales.get_sale, "code"))
    api.router.add_get("/flashsales/{code}/claims", by_key(flashsales.sale_claims, "code"))
    api.router.add_post("/flashsales/{code}/cancel", by_key(flashsales.cancel_sale, "code"))
    api.router.add_get("/claims/{claim_code}", by_key(flashsales.get_claim, "claim_code"))
    api.router.add_post("/claims/{claim_code}/use", by_key(flashsales.use_claim, "claim_code"))
