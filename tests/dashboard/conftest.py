"""The dashboard over real HTTP: a client that keeps cookies (the session) and can log in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestServer

from bot.app import Core
from bot.http.server import create_app
from tests.conftest import ADMIN_TOKEN

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Operator:
    """A browser without JavaScript: GETs, form POSTs, redirects not followed."""

    def __init__(self, http: ClientSession) -> None:
        self.http = http

    async def get(self, path: str, **headers: str) -> tuple[int, str, dict[str, str]]:
        async with self.http.get(path, allow_redirects=False, headers=headers) as resp:
            return resp.status, await resp.text(), dict(resp.headers)

    async def csrf(self, path: str = "/dashboard/login") -> str:
        status, body, _ = await self.get(path)
        found = CSRF.search(body)
        assert found, (status, body[:300])
        return found.group(1)

    async def post(self, path: str, form: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        async with self.http.post(path, data=form, allow_redirects=False) as resp:
            return resp.status, await resp.text(), dict(resp.headers)

    async def log_in(self, token: str = ADMIN_TOKEN) -> tuple[int, str, dict[str, str]]:
        csrf = await self.csrf()
        return await self.post("/dashboard/login", {"csrf": csrf, "token": token})


@pytest.fixture
async def operator(core: Core) -> AsyncIterator[Operator]:
    server = TestServer(create_app(core, background=False))
    await server.start_server()
    # unsafe: keep cookies of an IP address (the test server is 127.0.0.1).
    jar = CookieJar(unsafe=True)
    async with ClientSession(base_url=str(server.make_url("/")), cookie_jar=jar) as http:
        yield Operator(http)
    await server.close()
