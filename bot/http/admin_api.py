"""Operator API over communities, roles and held invite rewards (bearer token, see members_api).

Thin: each route reads the request, calls `bot.operators` (shared with `memberbot admin`) and
answers its result or its refusal as JSON.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from bot import operators
from bot.http.common import Handler, core_of, error, read_json_object
from storage.invites import REVIEW


def _refusals(handler: Handler) -> Handler:
    """An operator action refused becomes its JSON error (422 field, 404 unknown, 409 conflict)."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except operators.OperatorError as refusal:
            return error(refusal.status, refusal.message, **refusal.extra)

    return answer


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


@_refusals
async def list_communities(request: web.Request) -> web.StreamResponse:
    return _json(await operators.list_communities(core_of(request).services))


@_refusals
async def get_community(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return _json(await operators.get_community(services, request.match_info["slug"]))


@_refusals
async def put_community(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    _, data = await read_json_object(request)
    saved, created = await operators.save_community(services, request.match_info["slug"], data)
    return _json(saved, 201 if created else 200)


@_refusals
async def archive_community(request: web.Request) -> web.StreamResponse:
    services = core_of(request).services
    return _json(await operators.archive_community(services, request.match_info["slug"]))


@_refusals
async def list_roles(request: web.Request) -> web.StreamResponse:
    return _json(await operators.list_roles(core_of(request).services))


@_refusals
async def grant_role(request: web.Request) -> web.StreamResponse:
    _, data = await read_json_object(request)
    held, granted = await operators.grant_role(core_of(request).services, data)
    return _json(held, 201 if granted else 200)


@_refusals
async def revoke_role(request: web.Request) -> web.StreamResponse:
    _, data = await read_json_object(request)
    return _json(await operators.revoke_role(core_of(request).services, data))


@_refusals
async def list_invites(request: web.Request) -> web.StreamResponse:
    status = request.query.get("status", REVIEW)
    return _json(await operators.list_invites(core_of(request).services, status))


def _decide(approve: bool) -> Handler:
    @_refusals
    async def decide(request: web.Request) -> web.StreamResponse:
        raw = request.match_info["invite_id"]
        # Digits only, and few enough for a BIGINT; anything else names no invite.
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            return error(404, f"unknown invite {raw[:20]}")
        services = core_of(request).services
        return _json(await operators.decide_invite(services, int(raw), approve))

    return decide


def setup(app: web.Application) -> None:
    app.router.add_get("/api/communities", list_communities)
    app.router.add_get("/api/communities/{slug}", get_community)
    app.router.add_put("/api/communities/{slug}", put_community)
    app.router.add_delete("/api/communities/{slug}", archive_community)
    app.router.add_get("/api/roles", list_roles)
    app.router.add_post("/api/roles", grant_role)
    app.router.add_delete("/api/roles", revoke_role)
    app.router.add_get("/api/invites", list_invites)
    app.router.add_post("/api/invites/{invite_id}/approve", _decide(approve=True))
    app.router.add_post("/api/invites/{invite_id}/reject", _decide(approve=False))
