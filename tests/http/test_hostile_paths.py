"""Operator paths and chat ids that no app sends: a 4xx or a clear answer on both backends."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from aiohttp import ClientSession

from bot.channels.console import ConsoleChat
from tests.http.conftest import AUTH, order_body, sign

NUL_PATHS = [
    "/api/members/tele%00gram/1001",
    "/api/members/%00/1001",
    "/api/members/telegram%00/1001/ledger",
    "/api/members/wechat%00/o1/export",
]


async def test_nul_in_channel_is_404_not_500(http: ClientSession) -> None:
    statuses = []
    for path in NUL_PATHS:
        async with http.get(path, headers=AUTH) as resp:
            statuses.append(resp.status)
            assert "Traceback" not in await resp.text()
    payload = {"amount": 1, "reason": "gift", "idempotency_key": "k1"}
    async with http.post("/api/members/tele%00gram/1/points", json=payload, headers=AUTH) as resp:
        statuses.append(resp.status)

    assert statuses == [404] * (len(NUL_PATHS) + 1)


async def test_nul_in_an_order_channel_is_422(http: ClientSession) -> None:
    body = order_body("N-1", channel="tele\x00gram")
    headers = {"X-Memberbot-Signature": sign(body), "Content-Type": "application/json"}
    async with http.post("/api/orders", data=body, headers=headers) as resp:
        status, answer = resp.status, await resp.json()

    assert (status, answer["field"]) == (422, "channel")


async def test_an_id_over_128_characters_is_dropped_alike_on_both_backends(
    chat: Callable[..., ConsoleChat], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="memberbot.dispatcher"):
        too_long = await chat("x" * 129).say("checkin")
        with_nul = await chat("al\x00ice").say("checkin")
    at_limit = await chat("x" * 128).say("checkin")

    assert (too_long, with_nul) == (None, None)
    assert at_limit is not None and at_limit.text.startswith("Checked in! +5 points")
    assert [r.getMessage() for r in caplog.records] == [
        "inbound dropped channel=console: an id no app sends"
    ] * 2
