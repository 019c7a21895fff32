"""Helpers for the HTTP tests: signed order posts and the operator API with its bearer token."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from bot.app import Core
from bot.http.server import create_app
from tests.conftest import ADMIN_TOKEN, SHOP_SECRET

SIGNATURE_HEADER = "X-Memberbot-Signature"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

Answer = tuple[int, Any]


def sign(body: bytes, secret: str = SHOP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def order_body(
    order_id: str = "A-1",
    *,
    channel: str = "telegram",
    external_id: str = "1001",
    amount: object = "99.90",
    currency: str = "CNY",
    status: str = "paid",
) -> bytes:
    return json.dumps(
        {
            "order_id": order_id,
            "channel": channel,
            "external_id": external_id,
            "amount": amount,
            "currency": currency,
            "status": status,
        }
    ).encode()


async def _answer(resp: Any) -> Answer:
    if resp.content_type == "application/json":
        return resp.status, await resp.json()
    return resp.status, await resp.text()


@pytest.fixture
def post_raw(http: ClientSession) -> Callable[..., Awaitable[Answer]]:
    """POST raw bytes to /api/orders, signed correctly unless `signature` says otherwise."""

    async def post(body: bytes, signature: str | None = "auto") -> Answer:
        headers = {"Content-Type": "application/json"}
        if signature == "auto":
            headers[SIGNATURE_HEADER] = sign(body)
        elif signature is not None:
            headers[SIGNATURE_HEADER] = signature
        async with http.post("/api/orders", data=body, headers=headers) as resp:
            return await _answer(resp)

    return post


@pytest.fixture
def post_order(post_raw: Callable[..., Awaitable[Answer]]) -> Callable[..., Awaitable[Answer]]:
    """`await post_order("A-1", amount="99.90")`: a correctly signed order, (status, JSON)."""

    async def post(order_id: str = "A-1", **fields: Any) -> Answer:
        return await post_raw(order_body(order_id, **fields))

    return post


class Admin:
    """The operator API as a test speaks it: (status, JSON) for each call."""

    def __init__(self, http: ClientSession) -> None:
        self.http = http

    async def member(self, channel: str = "telegram", external_id: str = "1001") -> Answer:
        async with self.http.get(f"/api/members/{channel}/{external_id}", headers=AUTH) as resp:
            return await _answer(resp)

    async def ledger(self, channel: str = "telegram", external_id: str = "1001") -> Answer:
        path = f"/api/members/{channel}/{external_id}/ledger"
        async with self.http.get(path, headers=AUTH) as resp:
            return await _answer(resp)

    async def points(self, channel: str, external_id: str, payload: object) -> Answer:
        path = f"/api/members/{channel}/{external_id}/points"
        async with self.http.post(path, json=payload, headers=AUTH) as resp:
            return await _answer(resp)

    async def balance(self, channel: str = "telegram", external_id: str = "1001") -> int:
        status, body = await self.member(channel, external_id)
        assert status == 200, body
        return int(body["points"])


@pytest.fixture
def admin(http: ClientSession) -> Admin:
    return Admin(http)


async def raw_status_line(http: ClientSession, request: bytes) -> bytes:
    """Send hand-made HTTP bytes (e.g. a header that is not UTF-8) and return the status line."""
    url = http._base_url  # the TestServer on loopback
    assert url is not None and url.host is not None and url.port is not None
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(request)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    return raw.split(b"\r\n", 1)[0]


@asynccontextmanager
async def serving(core: Core) -> AsyncIterator[ClientSession]:
    """A real server on loopback for a core built inside the test (e.g. one whose DB is down)."""
    server = TestServer(create_app(core, background=False))
    await server.start_server()
    session = ClientSession(base_url=str(server.make_url("/")))
    try:
        yield session
    finally:
        await session.close()
        await server.close()
