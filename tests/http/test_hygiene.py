"""Connections that are not well-behaved HTTP clients, against the runner `memberbot serve`
uses: quiet one-line 400s without echo, idle and trickling connections closed, a cap."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.app import Core
from bot.channels.console import ConsoleChat
from bot.http import limits
from bot.http.hygiene import GuardedRunner
from bot.http.server import create_app
from tests.conftest import ADMIN_TOKEN

Open = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
BOUND = 10  # seconds: far beyond the idle limits below; only a hang would reach it


class GuardedTestServer(TestServer):
    def __init__(self, app: web.Application, **guard: Any) -> None:
        super().__init__(app, host="127.0.0.1")
        self.guard = guard

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        # As in `memberbot serve`: a client that goes away does not cancel its handler.
        kwargs["handler_cancellation"] = False
        return GuardedRunner(self.app, **self.guard, **kwargs)


@pytest.fixture
async def connect(core: Core) -> AsyncIterator[Callable[..., Awaitable[Open]]]:
    servers: list[TestServer] = []
    writers: list[asyncio.StreamWriter] = []

    async def start(**guard: Any) -> Open:
        server = GuardedTestServer(create_app(core, background=False), **guard)
        await server.start_server()
        servers.append(server)

        async def open_one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            writers.append(writer)
            return reader, writer

        return open_one

    yield start
    for writer in writers:
        writer.close()
    for server in servers:
        await server.close()


async def _closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), BOUND)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE /secret-openid-o123 HTTP/1.1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon o123\r\n\r\n",
        b"GET /healthz?o123 HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /" + b"o123" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /wechat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz-o123\r\n",
    ],
    ids=["method", "header", "version", "long-line", "chunk-size"],
)
async def test_malformed_requests_get_a_quiet_400(
    connect: Callable[..., Awaitable[Open]],
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
) -> None:
    open_one = await connect()
    reader, writer = await open_one()
    with caplog.at_level(logging.DEBUG):
        writer.write(request_bytes)
        answer = await _closed(reader)

    assert answer.split(b" ", 2)[1] == b"400"
    assert answer.endswith(b"\r\n\r\nbad request\n")
    assert b"o123" not in answer
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelname, r.exc_info) for r in loud] == [
        ("memberbot.http", "WARNING", None)
    ]
    assert "o123" not in loud[0].getMessage()


async def test_silent_trickling_and_idle_connections_are_closed(
    connect: Callable[..., Awaitable[Open]],
) -> None:
    open_one = await connect(idle_seconds=0.3)
    silent, _ = await open_one()
    trickling, trickle = await open_one()
    idle, keep_alive = await open_one()
    keep_alive.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")

    async def trickle_headers() -> None:
        trickle.write(b"GET /healthz HTTP/1.1\r\n")
        for n in range(10 * BOUND):
            if trickle.is_closing() or trickling.at_eof():
                return
            trickle.write(f"X-Slow-{n}: 1\r\n".encode())
            await asyncio.sleep(0.1)

    feeding = asyncio.create_task(trickle_headers())
    closed = await asyncio.gather(_closed(silent), _closed(trickling), _closed(idle))
    feeding.cancel()

    assert closed[0] == closed[1] == b""
    assert closed[2].startswith(b"HTTP/1.1 200 ")  # answered, then closed once idle


async def test_connections_beyond_the_cap_are_closed_at_once(
    connect: Callable[..., Awaitable[Open]], caplog: pytest.LogCaptureFixture
) -> None:
    open_one = await connect(idle_seconds=BOUND * 2, max_connections=3)
    held = [await open_one() for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="memberbot.http"):
        extra, _ = await open_one()
        refused = await _closed(extra)
    reader, writer = held[0]
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    still_served = await _closed(reader)

    assert refused == b""
    assert still_served.startswith(b"HTTP/1.1 ")
    assert any("connection refused" in r.getMessage() for r in caplog.records)


async def test_a_client_dropping_mid_body_is_counted_apart(
    core: Core, connect: Callable[..., Awaitable[Open]], caplog: pytest.LogCaptureFixture
) -> None:
    open_one = await connect()
    reader, writer = await open_one()
    with caplog.at_level(logging.INFO):
        writer.write(
            b"POST /api/members/console/alice/points HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + ADMIN_TOKEN.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
            + b'{"amount": 1, '
            * 10
        )
        await writer.drain()
        writer.close()
        await _closed(reader)
        counted = core.services.metrics.http_requests
        for _ in range(BOUND * 100):  # the server notices the drop on its own time
            if _count(counted, "client_closed") or _count(counted, "500"):
                break
            await asyncio.sleep(0.01)

    assert _count(counted, "client_closed") == 1
    assert _count(counted, "500") == 0
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def _count(counter: Any, status: str) -> float:
    return sum(
        sample.value
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get("status") == status
    )


@pytest.mark.parametrize(
    "head",
    [
        b"POST /api/members/console/alice/points HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + ADMIN_TOKEN.encode() + b"\r\n",
        b"POST /api/orders HTTP/1.1\r\nHost: x\r\n",
    ],
    ids=["operator", "shop"],
)
async def test_a_trickling_body_gets_408(
    connect: Callable[..., Awaitable[Open]],
    monkeypatch: pytest.MonkeyPatch,
    chat: Callable[..., ConsoleChat],
    head: bytes,
) -> None:
    await chat("alice").say("checkin")  # a member whose points can be adjusted
    monkeypatch.setattr(limits, "BODY_SECONDS", 0.3)
    open_one = await connect()
    reader, writer = await open_one()
    writer.write(head + b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{")

    async def trickle() -> None:
        for _ in range(10 * BOUND):
            if writer.is_closing():
                return
            writer.write(b" ")
            await asyncio.sleep(0.1)

    feeding = asyncio.create_task(trickle())
    status_line = await asyncio.wait_for(reader.readline(), BOUND)
    feeding.cancel()

    assert status_line.split(b" ", 2)[1] == b"408"
