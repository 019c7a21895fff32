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
    # The subjects built after the first dashboard: figures, not "not built yet".
    assert body["flash_sales"]["started"] == 2
    assert body["redemptions"]["vouchers"]["issued"] == 2
    assert body["complaints"]["filed"] == 4
    assert body["campaigns"]["recipients"] == 6


async def test_default_period_is_30_days(http):
    async with http.get("/api/stats", headers=AUTH) as resp:
        assert (await resp.json())["period"]["days"] == 30


@pytest.mark.parametrize("days", ["0", "367", "-1", "x", "7.5", ""])
async def test_bad_period_is_422_naming_days(http, days):
    async with http.get(f"/api/stats?days={days}", headers=AUTH) as resp:
        status, body = resp.status, await resp.json()
    assert (status, body["field"]) == (422, "days")


async def test_what_members_do_in_chat_and_at_the_till_shows_in_the_stats(http, chat, post_order):
    await chat("alice").say("checkin")
    await chat("bob", channel="telegram").say("checkin")
    assert (await post_order("A-1", external_id="bob", amount="99.90"))[0] == 200
    assert (await post_order("A-2", external_id="bob", amount="10.10"))[0] == 200

    async with http.get("/api/stats?days=7", headers=AUTH) as resp:
        body = await resp.json()

    members = body["members"]
    assert (members["total"], members["new"], members["active"]) == (2, 2, 2)
    assert members["by_channel"] == {"console": 1, "telegram": 1}
    assert (body["checkins"]["total"], body["checkins"]["per_day"][-1]["count"]) == (2, 2)
    orders = body["orders"]
    assert (orders["count"], orders["net"], orders["repeat_buyers"]) == (2, "110.00", 1)
    assert orders["by_tier"]["bronze"]["spend_per_member"] == "55.00"
    points = body["points"]
    assert points["earned"] > 10  # check-ins' 5 + 5 and the orders' points
    assert points["earned"] == points["outstanding"]  # nothing spent, expired or taken back


async def test_a_complaint_worked_through_shows_in_the_stats(http, core, chat):
    """What the tickets feature writes is what the complaints' figures read."""
    from tests.http.test_tickets_api import call, staff

    alice = chat("alice")
    await alice.say("/complain the kettle leaks")
    await staff(core, chat, "sam")
    assert (await call(http, "POST", "/api/tickets/C-000001/reply", {"text": "Sorry."}))[0] == 200
    assert (await call(http, "POST", "/api/tickets/C-000001/resolve", {"text": "Sent."}))[0] == 200
    await alice.say("/rate C-000001 4")

    async with http.get("/api/stats?days=7", headers=AUTH) as resp:
        complaints = (await resp.json())["complaints"]

    assert complaints == {
        "filed": 1,
        "resolved": 1,
        "open": 0,
        "first_response_met": 1,
        "breaches": 0,
        "first_response_sla_met": 1.0,
        "first_response_median_hours": 0.0,  # the test clock stands still
        "average_score": 4.0,
    }


async def test_a_flash_sale_claimed_used_and_cancelled_shows_in_the_stats(http, core, chat):
    """What the flash sales feature writes is what the flash sales' figures read."""
    from tests.handlers.flashsale_support import coffee, join_chat
    from tests.http.test_communities_api import call
    from tests.http.test_flashsales_api import SALE

    community = await coffee(core)
    alice, bob = chat("alice"), chat("bob")
    for who in (alice, bob):
        await join_chat(core, community, who)
    body = {k: v for k, v in SALE.items() if k not in ("starts_at", "min_tier")}
    code = (await call(http, "POST", "/api/flashsales", body))[1]["code"]
    for who in (alice, alice, bob):
        await who.say(f"claim {code}")
    claims = (await call(http, "GET", f"/api/flashsales/{code}/claims"))[1]
    assert (await call(http, "POST", f"/api/claims/{claims[0]['claim_code']}/use"))[0] == 200
    # Cancelled while live: the claims stay valid, so the sale still counts as started.
    assert (await call(http, "POST", f"/api/flashsales/{code}/cancel"))[0] == 200

    async with http.get("/api/stats?days=7", headers=AUTH) as resp:
        sales = (await resp.json())["flash_sales"]

    assert sales == {
        "started": 1,
        "sold_out": 0,
        "stock": 20,
        "claimed": 3,
        "sell_through": 0.15,
        "members": 2,
        "used": 1,
    }
