"""Running an aiohttp application until the process is told to stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from aiohttp import web

from bot.http.hygiene import GuardedRunner


async def serve_until_stopped(
    app: web.Application,
    host: str,
    port: int,
    *,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve `app` until SIGINT or SIGTERM, then shut it down cleanly (its shutdown and
    cleanup hooks run: pending pushes go out, chat apps stop). If the address cannot be
    taken (OSError: in use, not ours), what started is stopped the same way before it rises."""
    runner = GuardedRunner(app, access_log=None)  # timeouts, connection cap, quiet 400s
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        if on_started is not None:
            on_started()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
