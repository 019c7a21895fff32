"""/api/rewards (the points mall), /api/vouchers (the till), a member's vouchers."""

from __future__ import annotations

from aiohttp import web

from bot.admin import rewards
from bot.http.common import by_key, core_of, json_answer, read_json_object


async def list_rewards(request: web.Request) -> web.StreamResponse:
    return json_answer(await rewards.list_rewards(core_of(request).services))


async def put_reward(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    data = await read_json_object(request)
    saved, created = await rewards.save_reward(services, request.match_info["slug"], data)
    return json_answer(saved, 201 if created else 200)


async def member_vouchers(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    account = request.match_info["channel"], request.match_info["external_id"]
    return json_answer(await rewards.member_vouchers(services, *account))


def setup(api: web.Application) -> None:
    api.router.add_get("/rewards", list_rewards)
    api.router.add_get("/rewards/{slug}", by_key(rewards.get_reward, "slug"))
    api.router.add_put("/rewards/{slug}", put_reward)
    api.router.add_delete("/rewards/{slug}", by_key(rewards.retire_reward, "slug"))
    api.router.add_get("/vouchers/{code}", by_key(rewards.get_voucher, "code"))
    api.router.add_post("/vouchers/{code}/use", by_key(rewards.use_voucher, "code"))
    api.router.add_post("/vouchers/{code}/cancel", by_key(rewards.cancel_voucher, "code"))
    api.router.add_get("/members/{channel}/{external_id}/vouchers", member_vouchers)
