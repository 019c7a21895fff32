"""The operator API: a sub-application under /api, every route behind the bearer token."""

from __future__ import annotations

from aiohttp import web

from bot.http.api import (
    campaigns,
    communities,
    flashsales,
    invites,
    members,
    openapi,
    outbox,
    privacy,
    rewards,
    roles,
    stats,
    tickets,
)
from bot.http.auth import require_bearer

PREFIX = "/api"


def create_api() -> web.Application:
    """Routes relative to /api; mount with `app.add_subapp(PREFIX, create_api())`."""
    api = web.Application(middlewares=[require_bearer])
    for subject in (
        members,
        communities,
        roles,
        invites,
        outbox,
        stats,
        privacy,
        campaigns,
        openapi,
        tickets,
        rewards,
        flashsales,
    ):
        subject.setup(api)
    return api
