"""/api/flashsales and /api/claims: create, read, list, cancel; the till's check and use;
every bad field named with a 422."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.handlers.flashsale_support import coffee, join_chat
from tests.http.test_communities_api import call

SALE = {
    "community": "coffee",
    "title": "Geisha beans",
    "price": "99.50",
    "stock": 20,
    "per_member_limit": 2,
    "starts_at": "2026-03-10T12:00:00+08:00",
    "duration_minutes": 30,
    "min_tier": "silver",
}


def sale_json(code: str, **changed: object) -> dict[str, object]:
    return {
        "code": code,
        "community": "coffee",
        "title": "Geisha beans",
        "price": "99.50",
        "stock": 20,
        "claimed": 0,
        "remaining": 20,
        "per_member_limit": 2,
        "min_tier": "silver",
        "starts_at": "2026-03-10T04:00:00+00:00",
        "ends_at": "2026-03-10T04:30:00+00:00",
        "state": "scheduled",
    } | changed


async def test_create_read_list_and_cancel(core, http):
    await coffee(core)

    status, created = await call(http, "POST", "/api/flashsales", SALE)

    assert status == 201
    code = created["code"]
    assert len(code) == 6 and created == sale_json(code)
    assert await call(http, "GET", f"/api/flashsales/{code}") == (200, created)
    assert await call(http, "GET", f"/api/flashsales/{code.lower()}") == (200, created)
    assert await call(http, "GET", "/api/flashsales?state=scheduled") == (200, [created])
    assert await call(http, "GET", "/api/flashsales?state=live") == (200, [])
    assert await call(http, "GET", f"/api/flashsales/{code}/claims") == (200, [])
    cancelled = sale_json(code, state="cancelled")
    assert await call(http, "POST", f"/api/flashsales/{code}/cancel") == (200, cancelled)
    status, again = await call(http, "POST", f"/api/flashsales/{code}/cancel")
    assert (status, again) == (409, {"error": f"flash sale {code} is cancelled already"})


async def test_a_sale_starting_now_is_live_at_once(core, http):
    await coffee(core)
    body = {k: v for k, v in SALE.items() if k != "starts_at"}

    status, created = await call(http, "POST", "/api/flashsales", body)

    assert status == 201 and created["state"] == "live"
    assert created["starts_at"] == "2026-03-10T02:00:00+00:00"


async def test_unknown_sale_and_claim_are_404(http):
    assert (await call(http, "GET", "/api/flashsales/ZZZZZZ"))[0] == 404
    assert (await call(http, "GET", "/api/flashsales/ZZZZZZ/claims"))[0] == 404
    assert (await call(http, "POST", "/api/flashsales/ZZZZZZ/cancel"))[0] == 404
    assert await call(http, "GET", "/api/claims/ABCDEFGHJK") == (
        404,
        {"error": "unknown claim ABCDEFGHJK"},
    )
    assert (await call(http, "POST", "/api/claims/nope/use"))[0] == 404


async def test_the_till_checks_a_claim_then_uses_it_once(core, http, chat):
    community = await coffee(core)
    alice = chat("alice")
    await join_chat(core, community, alice)
    body = {k: v for k, v in SALE.items() if k not in ("starts_at", "min_tier")}
    _, created = await call(http, "POST", "/api/flashsales", body)
    await alice.say(f"claim {created['code']}")
    _, claims = await call(http, "GET", f"/api/flashsales/{created['code']}/claims")
    claim_code = claims[0]["claim_code"]
    fresh = {
        "claim_code": claim_code,
        "sale": created["code"],
        "member_id": claims[0]["member_id"],
        "claimed_at": "2026-03-10T02:00:00+00:00",
        "used": False,
    }
    assert claims == [fresh]

    assert await call(http, "GET", f"/api/claims/{claim_code}") == (200, fresh)
    used = fresh | {"used": True}
    assert await call(http, "POST", f"/api/claims/{claim_code}/use") == (200, used)
    assert await call(http, "POST", f"/api/claims/{claim_code}/use") == (
        409,
        {"error": f"claim {claim_code} was used already", **used},
    )
    assert await call(http, "GET", f"/api/claims/{claim_code}") == (200, used)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("community", "nope"),
        ("community", None),
        ("title", ""),
        ("title", "x" * 65),
        ("price", "0"),
        ("price", "-1"),
        ("price", "1e3"),
        ("price", 9.5),
        ("stock", 0),
        ("stock", -3),
        ("stock", "5"),
        ("per_member_limit", 0),
        ("duration_minutes", 0),
        ("duration_minutes", 7 * 24 * 60 + 1),
        ("starts_at", "2026-03-10T09:58:00+08:00"),
        ("starts_at", "2026-03-10T12:00:00"),
        ("starts_at", "tomorrow"),
        ("min_tier", "platinum"),
        ("colour", "red"),
    ],
)
async def test_a_bad_field_is_a_422_naming_it(core, http, field, value):
    await coffee(core)

    status, answer = await call(http, "POST", "/api/flashsales", SALE | {field: value})

    assert status == 422 and answer["field"] == field
    assert await call(http, "GET", "/api/flashsales") == (200, [])


async def test_a_start_a_minute_ago_is_taken_as_now(core, http):
    await coffee(core)
    late = (core.services.clock.now() - timedelta(seconds=50)).isoformat()

    status, created = await call(http, "POST", "/api/flashsales", SALE | {"starts_at": late})

    assert (status, created["state"]) == (201, "live")
