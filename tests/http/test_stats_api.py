"""GET /api/stats: the bearer token, the period parameter, the SPEC's keys."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.http.conftest import AUTH
from tests.stats_seed import seed

SPEC_KEYS = {
    "period",
    "members",
    "checkins",
    "points",
    "invites",
    "flash_sales",
    "redemptions",
    "complaints",
    "orders",
}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {ADMIN_TOKEN}"])
async def test_without_the_token_stats_refuse(http, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    async with http.get("/api/stats", headers=headers) as resp:
        assert (resp.status, await resp.json()) == (401, {"error": "missing or wrong bearer token"})


async def test_stats_have_the_spec_keys_for_the_asked_period(http, core):
    await seed(core.services.db)

    async with http.get("/api/stats?days=7", headers=AUTH) as resp:
        status, body = resp.status, await resp.json()

    assert status == 200
    assert set(body) >= SPEC_KEYS
    assert {"total", "new", "active", "by_tier", "by_channel"} <= set(body["members"])
    assert body["period"]["days"] == 7
    assert body["members"]["total"] == 5


async def test_default_period_is_30_days(http):
    async with http.get("/api/stats", headers=AUTH) as resp:
        assert (await resp.json())["period"]["days"] == 30


@pytest.mark.parametrize("days", ["0", "367", "-1", "x", "7.5", ""])
async def test_bad_period_is_422_naming_days(http, days):
    async with http.get(f"/api/stats?days={days}", headers=AUTH) as resp:
        status, body = resp.status, await resp.json()
    assert (status, body["field"]) == (422, "days")
