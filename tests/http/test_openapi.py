"""GET /api/openapi.json describes every /api route, and the server keeps to it: schemathesis
sends generated requests (bounded) to a real server and checks every answer."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.app import build_core
from bot.channels.console import ConsoleChat
from bot.http.api.openapi import document
from bot.http.server import create_app
from tests.conftest import ADMIN_TOKEN, make_settings
from tests.http.conftest import AUTH

SCHEMA = schemathesis.openapi.from_dict(document())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _registered(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD":
            continue
        if resource.canonical.startswith("/api/"):
            found.add((resource.canonical, route.method.lower()))
    return found


async def test_every_api_route_is_described_and_nothing_else(core):
    described = {
        (path, method)
        for path, item in document()["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert _registered(create_app(core, background=False)) == described


async def test_the_document_is_served_behind_the_token(http):
    async with http.get("/api/openapi.json", headers=AUTH) as resp:
        assert resp.status == 200
        assert (await resp.json())["openapi"] == "3.0.3"
    async with http.get("/api/openapi.json") as resp:
        assert resp.status == 401


class _Server:
    """The app on loopback in its own thread and loop (schemathesis calls it synchronously)."""

    def __init__(self, database: Path) -> None:
        self.url = f"sqlite+aiosqlite:///{database}"
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.base = ""
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.core = await build_core(make_settings(self.url, None))
        await ConsoleChat(self.core, "alice", "en").say("/checkin")
        self.runner = web.AppRunner(create_app(self.core, background=False))
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        host, port = self.runner.addresses[0][:2]
        self.base = f"http://{host}:{port}"

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.core.close()

    def __enter__(self) -> _Server:
        self.thread.start()
        assert self.ready.wait(30), "the server did not start"
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    database = tmp_path_factory.mktemp("openapi") / "memberbot.db"
    shutil.copy(sqlite_template, database)
    with _Server(database) as running:
        yield running.base


@SCHEMA.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_server_keeps_to_its_description(case, server):
    case.call_and_validate(
        base_url=server, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, checks=CHECKS
    )
