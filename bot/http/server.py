"""The aiohttp application of `memberbot serve`: one server for every HTTP door.

Route groups, each with its own guard: ops (open), the shop's signed routes, the operator
API (a sub-application behind the bearer token), and the chat apps' webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from bot.app_core import Core, expiry_loop
from bot.channels import telegram, wechat
from bot.channels.base import Channel
from bot.http import api, ops, shop
from bot.http.common import CORE
from bot.http.errors import guard

MAX_BODY = 64 * 1024  # webhooks and the API refuse larger bodies with 413


def create_app(core: Core, *, background: bool = True) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[guard])
    app[CORE] = core
    ops.setup(app)
    shop.setup(app)
    app.add_subapp(api.PREFIX, api.create_api())
    app.on_shutdown.append(_finish_pushes)  # before the channels that carry them stop
    for channel in _channels(core):
        channel.mount(app)
    if background:
        app.cleanup_ctx.append(_expiry_sweeper)
    return app


def _channels(core: Core) -> list[Channel]:
    """The chat apps that are configured; each mounts its webhook on this server."""
    settings = core.services.settings
    found: list[Channel] = []
    if settings.wechat_token:
        found.append(wechat.build(core))
    if settings.telegram_token:
        found.append(telegram.build(core))
    return found


async def _finish_pushes(app: web.Application) -> None:
    await app[CORE].services.outreach.settle()


async def _expiry_sweeper(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(expiry_loop(app[CORE].services))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
