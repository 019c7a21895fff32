"""/api/invites: list by state, approve or reject a reward held for review."""

from __future__ import annotations

from aiohttp import web

from bot.admin import invites
from bot.admin.errors import NotFound
from bot.http.common import Handler, core_of, json_answer
from storage.invites import REVIEW


async def list_invites(request: web.Request) -> web.StreamResponse:
    status = request.query.get("status", REVIEW)
    found = await invites.list_invites(core_of(request).services, status)
    return json_answer([view.invite for view in found])


def _decide(approve: bool) -> Handler:
    async def decide(request: web.Request) -> web.StreamResponse:
        raw = request.match_info["invite_id"]
        # Digits only, and few enough for a BIGINT; anything else names no invite.
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            raise NotFound(f"unknown invite {raw[:20]}")
        services = core_of(request).services
        return json_answer((await invites.decide_invite(services, int(raw), approve)).invite)

    return decide


def setup(api: web.Application) -> None:
    api.router.add_get("/invites", list_invites)
    api.router.add_post("/invites/{invite_id}/approve", _decide(approve=True))
    api.router.add_post("/invites/{invite_id}/reject", _decide(approve=False))
