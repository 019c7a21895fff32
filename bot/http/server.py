"""The aiohttp application of `memberbot serve`: one server for every HTTP door.

Route groups, each with its own guard: ops (open), the shop's signed routes, the operator
API (a sub-application behind the bearer token), and the chat apps' webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from bot import dashboard
from bot.app import Core, expiry_loop
from bot.channels.base import Channel
from bot.http import api, ops, shop
from bot.http.common import CORE
from bot.http.errors import guard
from bot.http.limits import MAX_BODY


def create_app(core: Core, *, background: bool = True) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[guard])
    app[CORE] = core
    ops.setup(app)
    shop.setup(app)
    app.add_subapp(api.PREFIX, api.create_api())
    dashboard.setup(app, core.services)
    app.on_shutdown.append(_finish_pushes)  # before the senders that carry them stop
    for channel in _channels(core):
        channel.mount(app)
    if background:
        app.cleanup_ctx.append(_expiry_sweeper)
    return app


def _channels(core: Core) -> list[Channel]:
    """The chat apps whose updates this server takes in, each on its own sender (imported
    only when configured: they load slowly)."""
    found: list[Channel] = []
    senders = core.services.senders.by_channel
    if "wechat" in senders:
        from bot.channels.wechat import WeChatChannel

        found.append(WeChatChannel(core, senders["wechat"]))
    if "telegram" in senders:
        from bot.channels.telegram import TelegramChannel

        found.append(TelegramChannel(core, senders["telegram"]))
    return found


async def _finish_pushes(app: web.Application) -> None:
    await app[CORE].services.pushes.settle()


async def _expiry_sweeper(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(expiry_loop(app[CORE].services))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
