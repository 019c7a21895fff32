"""GET /healthz and GET /metrics: what ops and Prometheus see."""

from __future__ import annotations

import asyncio
import gc
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import build_core
from storage import members, roles
from storage.cache import Keys
from tests.conftest import START, make_settings
from tests.http.conftest import order_body, serving, sign


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _metrics(http) -> tuple[int, str, dict]:
    async with http.get("/metrics") as resp:
        text = await resp.text()
        return resp.status, resp.headers["Content-Type"], _samples(text)


async def test_healthz_is_ok_when_database_and_cache_answer(http):
    async with http.get("/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok", "database": "ok", "cache": "ok"}


@pytest.mark.parametrize(
    "database_url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/x",
        "sqlite+aiosqlite:////nonexistent-memberbot-dir/sub/memberbot.db",
    ],
    ids=["postgres-unreachable", "sqlite-unopenable"],
)
async def test_healthz_is_503_when_the_database_is_down(database_url):
    core = await build_core(make_settings(database_url, None), migrate_sqlite=False)
    try:
        async with serving(core) as http, http.get("/healthz") as resp:
            assert resp.status == 503
            assert await resp.json() == {"status": "down", "database": "down", "cache": "ok"}
    finally:
        await core.close()
        # aiosqlite leaves the worker thread of a failed connect behind; collect it while
        # this test's loop is alive, so it cannot report "Event loop is closed" in a later test.
        gc.collect()
        await asyncio.sleep(0.05)


async def test_healthz_is_503_when_redis_is_down(backend):
    database_url, _ = backend
    core = await build_core(
        make_settings(database_url, "redis://127.0.0.1:1/0"),
        keys=Keys(prefix=f"mbtest:{uuid.uuid4().hex}"),
        migrate_sqlite=False,
    )
    try:
        async with serving(core) as http, http.get("/healthz") as resp:
            assert resp.status == 503
            assert await resp.json() == {"status": "down", "database": "ok", "cache": "down"}
    finally:
        await core.close()


async def test_metrics_is_prometheus_text_with_the_memberbot_series(http, chat):
    reply = await chat("alice").say("签到")
    assert reply is not None and reply.text.startswith("Checked in! +5 points")
    async with http.get("/healthz") as resp:
        assert resp.status == 200

    status, content_type, samples = await _metrics(http)

    assert status == 200
    assert content_type.startswith("text/plain")
    assert samples[("memberbot_requests_total", (("channel", "console"),))] == 1.0
    assert samples[("memberbot_checkins_total", ())] == 1.0
    assert samples[("memberbot_points_issued_total", (("reason", "checkin"),))] == 5.0
    assert samples[("memberbot_handler_seconds_count", (("action", "checkin"),))] == 1.0
    assert any(name == "memberbot_handler_seconds_bucket" for name, _ in samples)
    healthz = (("route", "/healthz"), ("status", "200"))
    assert samples[("memberbot_http_requests_total", healthz)] == 1.0


async def test_second_checkin_does_not_count_as_a_checkin_in_metrics(http, chat):
    await chat("alice").say("checkin")
    await chat("alice").say("checkin")

    _, _, samples = await _metrics(http)

    assert samples[("memberbot_requests_total", (("channel", "console"),))] == 2.0
    assert samples[("memberbot_checkins_total", ())] == 1.0
    assert samples[("memberbot_points_issued_total", (("reason", "checkin"),))] == 5.0


async def test_points_from_orders_are_counted_once(http):
    body = order_body("M-1", amount="42.00")
    headers = {"X-Memberbot-Signature": sign(body), "Content-Type": "application/json"}
    for _ in range(2):
        async with http.post("/api/orders", data=body, headers=headers) as resp:
            assert resp.status == 200

    _, _, samples = await _metrics(http)

    assert samples[("memberbot_points_issued_total", (("reason", "order"),))] == 42.0
    route = (("route", "/api/orders"), ("status", "200"))
    assert samples[("memberbot_http_requests_total", route)] == 2.0


async def test_metrics_count_tickets_by_state_from_the_database(http, core, chat):
    alice, bob, sam = chat("alice"), chat("bob"), chat("sam")
    staff, _ = await members.get_or_create(core.services.db, sam.channel, sam.name, START)
    async with core.services.db.transaction() as session:
        await roles.grant(session, staff.id, roles.STAFF, 0, core.services.clock.now())
    assert (await alice.say("/complain the kettle leaks")).text.startswith(
        "Your complaint is filed as C-000001."
    )
    assert (await bob.say("/complain late delivery")).text.startswith(
        "Your complaint is filed as C-000002."
    )
    assert (await sam.say("/take 2")).text == "C-000002 is yours."

    _, _, samples = await _metrics(http)

    by_state = {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "memberbot_tickets_by_state"
    }
    assert by_state == {"open": 1.0, "assigned": 1.0, "waiting": 0.0, "resolved": 0.0,
                        "closed": 0.0}  # fmt: skip
    assert samples[("memberbot_tickets_total", ())] == 2.0  # the counter of filings stays
