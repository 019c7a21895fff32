"""/api/members/{channel}/{external_id}: a member, their ledger, manual point adjustments."""

from __future__ import annotations

from aiohttp import web

from bot.admin import birthdays, members
from bot.http.common import core_of, json_answer, read_json_object


def _account(request: web.Request) -> tuple[str, str]:
    return request.match_info["channel"], request.match_info["external_id"]


async def get_member(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return json_answer(await members.member_json(services, *_account(request)))


async def get_ledger(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    limit = members.page_size(request.query.get("limit"))
    return json_answer(await members.ledger_page(services, *_account(request), limit))


async def adjust_points(request: web.Request) -> web.StreamResponse:
    data = await read_json_object(request)
    services = core_of(request).services
    return json_answer(await members.adjust_points(services, *_account(request), data))


async def correct_birthday(request: web.Request) -> web.StreamResponse:
    data = await read_json_object(request)
    services = core_of(request).services
    return json_answer(await birthdays.correct(services, *_account(request), data))


def setup(api: web.Application) -> None:
    base = "/members/{channel}/{external_id}"
    api.router.add_get(base, get_member)
    api.router.add_get(base + "/ledger", get_ledger)
    api.router.add_post(base + "/points", adjust_points)
    api.router.add_put(base + "/birthday", correct_birthday)
