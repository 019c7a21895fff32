"""SIGTERM stops the server within a bound: a request stuck in progress (a send waiting for a
rate limit) is cancelled after the grace period instead of holding the process for minutes."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
from aiohttp import web

from bot.http.serving import HANDLER_GRACE_SECONDS, serve_until_stopped


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_stuck_request_does_not_hold_the_shutdown() -> None:
    arrived, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        arrived.set()
        try:
            await asyncio.sleep(600)  # e.g. a reply waiting behind a group's rate limit
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/stuck", stuck)
    port, stop = free_port(), asyncio.Event()
    serving = asyncio.create_task(serve_until_stopped(app, "127.0.0.1", port, stop=stop))

    async def call() -> None:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.get(f"http://127.0.0.1:{port}/stuck") as response:
                    await response.read()
            except aiohttp.ClientError:
                pass  # the server went away: what a client of a stopping server sees

    for _ in range(100):  # the server is up when it accepts the request
        client = asyncio.create_task(call())
        try:
            await asyncio.wait_for(arrived.wait(), 0.1)
            break
        except TimeoutError:
            client.cancel()
    started = time.monotonic()
    stop.set()  # as SIGTERM does
    await asyncio.wait_for(serving, 60)
    took = time.monotonic() - started

    assert cancelled.is_set()
    assert took < 2 * HANDLER_GRACE_SECONDS + 3  # not the 600 s the request wanted
    await client
