"""Hostile bodies against the real app: never a 5xx, never a trace, healthy afterwards."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.conftest import Target, fuzz_settings, harmless
from tests.fuzz.strategies import (
    operator_request,
    order_body,
    raw_bytes,
    telegram_update,
    wechat_xml,
)


def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


@fuzz_settings()
@given(body=st.one_of(wechat_xml().map(lambda x: x.encode("utf-8", "surrogatepass")), raw_bytes))
async def test_wechat_plain(target: Target, body: bytes) -> None:
    hit = await target.wechat(body)
    assert harmless(hit), (hit, body)
    assert await target.healthy()


@fuzz_settings()
@given(plain=wechat_xml(), junk=st.one_of(st.none(), st.text(max_size=60)))
async def test_wechat_aes(target: Target, plain: str, junk: str | None) -> None:
    safe_plain = plain.encode("utf-8", "replace").decode()
    hit = await target.wechat_sealed(safe_plain, sealed=junk)
    assert harmless(hit), (hit, plain, junk)
    assert await target.healthy()


@fuzz_settings()
@given(body=telegram_update())
async def test_telegram_json(target: Target, body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        hit = await target.telegram(body)
        await _telegram_idle(target)
    assert hit.status in (200, 400, 413), (hit, body)
    assert harmless(hit)
    assert _no_errors_logged(caplog) == []
    assert await target.healthy()


@fuzz_settings()
@given(body=order_body())
async def test_order_bodies(target: Target, body: bytes) -> None:
    hit = await target.order(body)
    assert harmless(hit), (hit, body)
    assert await target.healthy()


@fuzz_settings()
@given(request=operator_request())
async def test_operator_paths(target: Target, request: tuple[str, str, bytes | None]) -> None:
    method, path, body = request
    hit = await target.operator(method, path, body)
    assert harmless(hit), (hit, request)
    assert await target.healthy()


async def _telegram_idle(target: Target, timeout: float = 10) -> None:
    """Wait until PTB has no update queued or in progress, twice in a row."""
    app = target.telegram_channel.app
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2:
        assert time.monotonic() < deadline, "updates still in progress"
        await asyncio.sleep(0.01)
        busy = app.update_processor.current_concurrent_updates
        quiet = quiet + 1 if app.update_queue.empty() and not busy else 0
