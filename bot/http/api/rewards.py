"""/api/rewards (the points mall), /api/vouchers (the till), a member's vouchers."""

from __future__ import annotations

from aiohttp import web

from bot.admin import rewards
from bot.http.common import core_of, json_answer, read_json_object


async def list_rewards(request: web.Request) -> web.StreamResponse:
    return json_answer(await rewards.list_rewards(core_of(request).services))


async def get_reward(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await rewards.get_reward(services, request.match_info["slug"]))


async def put_reward(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    data = await read_json_object(request)
    saved, created = await rewards.save_reward(services, request.match_info["slug"], data)
    return json_answer(saved, 201 if created else 200)


async def retire_reward(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await rewards.retire_reward(services, request.match_info["slug"]))


async def get_voucher(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await rewards.get_voucher(services, request.match_info["code"]))


async def use_voucher(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await rewards.use_voucher(services, request.match_info["code"]))


async def cancel_voucher(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await rewards.cancel_voucher(services, request.match_info["code"]))


async def member_vouchers(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    account = request.match_info["channel"], request.match_info["external_id"]
    return json_answer(await rewards.member_vouchers(services, *account))


def setup(api: web.Application) -> None:
    api.router.add_get("/rewards", list_rewards)
    api.router.add_get("/rewards/{slug}", get_reward)
    api.router.add_put("/rewards/{slug}", put_reward)
    api.router.add_delete("/rewards/{slug}", retire_reward)
    api.router.add_get("/vouchers/{code}", get_voucher)
    api.router.add_post("/vouchers/{code}/use", use_voucher)
    api.router.add_post("/vouchers/{code}/cancel", cancel_voucher)
    api.router.add_get("/members/{channel}/{external_id}/vouchers", member_vouchers)
