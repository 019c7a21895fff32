"""The aiohttp application of `memberbot serve`: one server for every HTTP door."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from bot.app_core import Core, expiry_loop
from bot.http import members_api, ops, orders_api
from bot.http.common import CORE, guard

MAX_BODY = 64 * 1024  # webhooks and the API refuse larger bodies with 413


def create_app(core: Core, *, background: bool = True) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[guard])
    app[CORE] = core
    ops.setup(app)
    members_api.setup(app)
    orders_api.setup(app)
    # The chat channels mount their webhooks here in their own issues:
    # GET/POST /wechat (bot/channels/wechat.py) and POST /telegram (bot/channels/telegram.py).
    if background:
        app.cleanup_ctx.append(_expiry_sweeper)
    return app


async def _expiry_sweeper(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(expiry_loop(app[CORE].services))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
