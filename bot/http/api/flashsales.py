"""/api/flashsales (create, list, read, claims, cancel) and /api/claims (the shop's till)."""

from __future__ import annotations

from aiohttp import web

from bot.admin import flashsales
from bot.http.common import core_of, json_answer, read_json_object


async def create_sale(request: web.Request) -> web.StreamResponse:
    data = await read_json_object(request)
    return json_answer(await flashsales.create_sale(core_of(request).services, data), 201)


async def list_sales(request: web.Request) -> web.StreamResponse:
    state = request.query.get("state")
    return json_answer(await flashsales.list_sales(core_of(request).services, state))


async def get_sale(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await flashsales.get_sale(services, request.match_info["code"]))


async def sale_claims(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await flashsales.sale_claims(services, request.match_info["code"]))


async def cancel_sale(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await flashsales.cancel_sale(services, request.match_info["code"]))


async def get_claim(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await flashsales.get_claim(services, request.match_info["claim_code"]))


async def use_claim(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await flashsales.use_claim(services, request.match_info["claim_code"]))


def setup(api: web.Application) -> None:
    api.router.add_post("/flashsales", create_sale)
    api.router.add_get("/flashsales", list_sales)
    api.router.add_get("/flashsales/{code}", get_sale)
    api.router.add_get("/flashsales/{code}/claims", sale_claims)
    api.router.add_post("/flashsales/{code}/cancel", cancel_sale)
    api.router.add_get("/claims/{claim_code}", get_claim)
    api.router.add_post("/claims/{claim_code}/use", use_claim)
