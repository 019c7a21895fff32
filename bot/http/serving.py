"""Running an aiohttp application until the process is told to stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from aiohttp import web

from bot.http.hygiene import GuardedRunner

# At SIGTERM, requests in progress get this long, then are cancelled (aiohttp then waits as
# long again for the connection to wind down: at most twice this): a Telegram update not yet
# answered is redelivered by Telegram (its id keeps it once), a WeChat message is retried by
# WeChat, and pushes wait in the outbox, not in memory. With the outbox's own bound
# (outbox.shutdown_seconds) the whole stop stays within Docker's grace period (compose: 30 s).
HANDLER_GRACE_SECONDS = 4.0
BACKLOG = 2048


async def serve_until_stopped(
    app: web.Application,
    host: str,
    port: int,
    *,
    on_started: Callable[[], None] | None = None,
    stop: asyncio.Event | None = None,
    reuse_port: bool = False,
) -> None:
    """Serve `app` until SIGINT or SIGTERM, then shut it down cleanly (its shutdown and
    cleanup hooks run: pending pushes go out, chat apps stop). If the address cannot be
    taken (OSError: in use, not ours), what started is stopped the same way before it rises."""
    # Timeouts, connection cap, quiet 400s; in-flight requests bounded at shutdown.
    runner = GuardedRunner(app, access_log=None, shutdown_timeout=HANDLER_GRACE_SECONDS)
    await runner.setup()
    try:
        # reuse_port: `serve --workers N` runs N such processes on one port (SO_REUSEPORT).
        # backlog: aiohttp's 128 overflows when hundreds of clients connect at once (a crowd
        # answering a nudge); the dropped SYNs are retried by the client after 1 s, then 3 s,
        # which is what a long p99 at 500 concurrent posts was made of (the kernel caps it at
        # net.core.somaxconn).
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=BACKLOG)
        await site.start()
        if on_started is not None:
            on_started()
        stop = stop or asyncio.Event()  # tests set it; a process gets SIGINT or SIGTERM
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
