"""The fuzz suite's app: `memberbot serve`'s aiohttp app with WeChat (AES key set, compatible
mode), Telegram (webhook, against the fake Bot API), the shop and the operator API, on the
parametrised backend, spoken to over real HTTP.

Examples per test: 15 by default and derandomized (the same cases on every `make test`);
`MEMBERBOT_FUZZ_EXAMPLES=2000 .venv/bin/pytest tests/fuzz` for a long, random run.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, settings

from bot.app import Core
from bot.channels.telegram import TelegramChannel
from bot.core.clock import FixedClock
from bot.http.server import create_app
from tests.channels.conftest import TOKEN, new_core, wechat_encrypt, wechat_settings
from tests.channels.test_telegram import channel_of as telegram_channel_of
from tests.conftest import ADMIN_TOKEN, SHOP_SECRET
from tests.fakes.telegram import TOKEN as TELEGRAM_TOKEN
from tests.fakes.telegram import running_fake
from tests.fakes.wechat import FakeWeChat

TELEGRAM_SECRET = "fuzz-telegram-secret"
DEFAULT_EXAMPLES = 15


def examples() -> int:
    return int(os.environ.get("MEMBERBOT_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))


def fuzz_settings() -> Any:
    """Hypothesis settings for every fuzz test (examples from the option or environment)."""
    return settings(
        max_examples=examples(),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=not os.environ.get("MEMBERBOT_FUZZ_EXAMPLES"),  # make test: repeatable
    )


@dataclass
class Hit:
    status: int
    body: str


@dataclass(repr=False)  # hypothesis prints the arguments of a failing case
class Target:
    """The running app and ways to reach each door with a correctly authenticated request."""

    http: ClientSession
    core: Core
    telegram_channel: TelegramChannel

    async def request(self, method: str, path: str, **kwargs: Any) -> Hit:
        async with self.http.request(method, path, **kwargs) as resp:
            return Hit(resp.status, await resp.text(errors="replace"))

    def wechat_query(self, **extra: str) -> dict[str, str]:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
        parts = sorted([TOKEN, timestamp, nonce])
        signature = hashlib.sha1("".join(parts).encode()).hexdigest()
        return {"signature": signature, "timestamp": timestamp, "nonce": nonce, **extra}

    async def wechat(self, body: bytes) -> Hit:
        return await self.request("POST", "/wechat", params=self.wechat_query(), data=body)

    async def wechat_sealed(self, plain: str | None, sealed: str | None = None) -> Hit:
        sealed = wechat_encrypt(plain) if sealed is None else sealed
        query = self.wechat_query(encrypt_type="aes")
        parts = sorted([TOKEN, query["timestamp"], query["nonce"], sealed])
        query["msg_signature"] = hashlib.sha1("".join(parts).encode()).hexdigest()
        body = f"<xml><ToUserName>gh_0</ToUserName><Encrypt>{sealed}</Encrypt></xml>"
        return await self.request("POST", "/wechat", params=query, data=body.encode())

    async def telegram(self, body: bytes) -> Hit:
        headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
        return await self.request("POST", "/telegram", data=body, headers=headers)

    async def order(self, body: bytes) -> Hit:
        signature = hmac.new(SHOP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Memberbot-Signature": f"sha256={signature}"}
        return await self.request("POST", "/api/orders", data=body, headers=headers)

    async def operator(self, method: str, path: str, body: bytes | None = None) -> Hit:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return await self.request(method, path, data=body, headers=headers)

    async def healthy(self) -> bool:
        hit = await self.request("GET", "/healthz")
        return hit.status == 200


def harmless(hit: Hit) -> bool:
    """Never a 5xx, never a trace in an answer."""
    return hit.status < 500 and "Traceback" not in hit.body and 'File "' not in hit.body


@pytest.fixture
async def target(
    backend: tuple[str, str | None], clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Target]:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    wechat_api = await FakeWeChat().start()
    async with running_fake() as telegram_api:
        settings_ = wechat_settings(
            backend,
            wechat_api,
            telegram_token=TELEGRAM_TOKEN,
            telegram_api_base=telegram_api.url,
            telegram_webhook_url="https://bot.example.test/telegram",
            telegram_webhook_secret=TELEGRAM_SECRET,
        )
        core = await new_core(settings_, clock)
        app = create_app(core, background=False)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        http = ClientSession(base_url=str(server.make_url("/")))
        try:
            yield Target(http, core, telegram_channel_of(app))
        finally:
            await http.close()
            await server.close()
            await core.close()
            await wechat_api.close()
