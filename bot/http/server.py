"""The aiohttp application of `memberbot serve`: one server for every HTTP door.

Route groups, each with its own guard: ops (open), the shop's signed routes, the operator
API (a sub-application behind the bearer token), and the chat apps' webhooks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from bot import dashboard
from bot.app import Core
from bot.channels.base import Channel
from bot.core.pushes import call_soon
from bot.http import api, ops, shop
from bot.http.common import CORE
from bot.http.errors import guard
from bot.http.limits import MAX_BODY
from bot.jobs.embedded import Embedded


def create_app(core: Core, *, background: bool = True) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[guard])
    app[CORE] = core
    ops.setup(app)
    shop.setup(app)
    app.add_subapp(api.PREFIX, api.create_api())
    dashboard.setup(app, core.services)
    for channel in _channels(core):
        channel.mount(app)
    if background:
        app.cleanup_ctx.append(_jobs)
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


async def _jobs(app: web.Application) -> AsyncIterator[None]:
    """The scheduler and the outbox sender. Embedded (no Redis): in this process. With
    Redis, `memberbot worker` processes run them; a push queued here wakes one of them."""
    core: Core = app[CORE]
    redis_url = core.services.settings.redis_url
    if redis_url:
        from bot.jobs.worker import Waker, queue_name

        waker = await Waker.connect(redis_url, queue_name(core.services.settings.redis_prefix))
        core.services.pushes.on_wake(call_soon(waker.wake))
        try:
            yield
        finally:
            await waker.close()
        return
    embedded = Embedded(core.jobs)
    core.services.pushes.on_wake(embedded.wake)
    await embedded.start()
    try:
        yield
    finally:
        await embedded.stop()
