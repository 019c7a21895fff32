"""Every refusal of the API is JSON {"error", "field"?}: aiohttp's own (404, 405, 413) too;
odd paths are refused, never a 500; Chinese stays readable."""

from __future__ import annotations

import json
from datetime import UTC

import pytest

from tests.http.conftest import AUTH, order_body


async def checked_in_alice(chat) -> None:
    await chat("alice").say("checkin")


async def answer(http, method: str, path: str, **kwargs) -> tuple[int, str, object]:
    async with http.request(method, path, **kwargs) as resp:
        text = await resp.text()
        return resp.status, resp.content_type, json.loads(text)


async def test_unknown_route_is_json_404(http):
    assert await answer(http, "GET", "/nowhere") == (
        404,
        "application/json",
        {"error": "not found"},
    )


async def test_unknown_api_route_is_json_404_behind_the_token(http):
    assert await answer(http, "GET", "/api/nowhere") == (
        401,
        "application/json",
        {"error": "missing or wrong bearer token"},
    )
    assert await answer(http, "GET", "/api/nowhere", headers=AUTH) == (
        404,
        "application/json",
        {"error": "not found"},
    )


async def test_wrong_method_is_json_405_with_allow(http, chat):
    await checked_in_alice(chat)

    async with http.patch("/api/members/console/alice", headers=AUTH) as resp:
        status, body, allow = resp.status, await resp.json(), resp.headers.get("Allow")

    assert (status, body, allow) == (405, {"error": "method not allowed"}, "DELETE,GET,HEAD")
    assert (await answer(http, "POST", "/healthz"))[::2] == (405, {"error": "method not allowed"})


async def test_body_over_64_kib_is_json_413_on_the_api(http, chat):
    await checked_in_alice(chat)
    payload = {"amount": 1, "reason": "x" * (64 * 1024), "idempotency_key": "k"}

    status, kind, body = await answer(
        http, "POST", "/api/members/console/alice/points", json=payload, headers=AUTH
    )

    assert (status, kind, body) == (
        413,
        "application/json",
        {"error": "body too large (at most 65536 bytes)"},
    )


async def test_body_over_64_kib_is_json_413_on_orders(post_raw):
    padded = json.loads(order_body("A-1", amount="10"))
    padded["note"] = "x" * (64 * 1024)

    status, body = await post_raw(json.dumps(padded).encode())

    assert (status, body) == (413, {"error": "body too large (at most 65536 bytes)"})


@pytest.mark.parametrize("suffix", ["", "/ledger"])
async def test_unknown_channel_says_so(http, suffix):
    status, _, body = await answer(http, "GET", f"/api/members/sms/alice{suffix}", headers=AUTH)

    assert (status, body) == (404, {"error": "unknown channel: use wechat, telegram or console"})


@pytest.mark.parametrize(
    "path",
    [
        "/api/members/tele%00gram/1001",
        "/api/members/%00/1001",
        "/api/members/telegram/10%00",
        "/api/members/telegram/%01%02",
        "/api/members/telegram/%ED%A0%80",
        "/api/members/wechat/" + "o" * 129,
        "/api/members/wechat/" + "o" * 129 + "/ledger",
        "/api/members/wechat/" + "o" * 5000,
    ],
    ids=["nul-channel", "nul-only", "nul-id", "controls", "surrogate", "129", "129-ledger", "5000"],
)
async def test_odd_channels_and_ids_are_404_on_both_backends(http, path):
    status, _, body = await answer(http, "GET", path, headers=AUTH)

    assert status == 404
    assert body in (
        {"error": "unknown member"},
        {"error": "unknown channel: use wechat, telegram or console"},
    )


async def test_adjustment_for_a_129_character_id_is_404_not_an_apology(admin):
    payload = {"amount": 1, "reason": "gift", "idempotency_key": "k"}

    assert await admin.points("wechat", "o" * 129, payload) == (404, {"error": "unknown member"})


@pytest.mark.parametrize("limit", ["0", "1001", "abc", "-1", "1.5", "", "٣"])
async def test_ledger_limit_out_of_range_is_422_naming_limit(http, chat, limit):
    await checked_in_alice(chat)

    status, _, body = await answer(
        http, "GET", f"/api/members/console/alice/ledger?limit={limit}", headers=AUTH
    )

    assert (status, body) == (
        422,
        {"error": "limit must be a whole number from 1 to 1000", "field": "limit"},
    )


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"amount": 0, "reason": "x", "idempotency_key": "k"}, "amount"),
        ({"amount": "100", "reason": "x", "idempotency_key": "k"}, "amount"),
        ({"amount": 10**12, "reason": "x", "idempotency_key": "k"}, "amount"),
        ({"amount": 100, "reason": "", "idempotency_key": "k"}, "reason"),
        ({"amount": 100, "reason": "x" * 65, "idempotency_key": "k"}, "reason"),
        ({"amount": 100, "reason": "x"}, "idempotency_key"),
        ({"amount": 100, "reason": "x", "idempotency_key": "\ud800"}, "idempotency_key"),
    ],
)
async def test_invalid_adjustment_names_its_field(admin, chat, payload, field):
    await checked_in_alice(chat)

    status, body = await admin.points("console", "alice", payload)

    assert (status, body["field"]) == (422, field)
    assert body["error"].startswith(field)


async def test_reused_idempotency_key_with_another_amount_is_409_showing_the_first(
    admin, chat, clock
):
    await checked_in_alice(chat)
    first = {"amount": 100, "reason": "apology", "idempotency_key": "adj-1"}
    await admin.points("console", "alice", first)

    status, body = await admin.points("console", "alice", {**first, "amount": 200})

    assert (status, body) == (
        409,
        {
            "error": "idempotency_key adj-1 was already used for an adjustment of +100 (apology)",
            "field": "idempotency_key",
            "applied": {
                "amount": 100,
                "reason": "apology",
                "created_at": clock.now().astimezone(UTC).isoformat(),
            },
        },
    )
    assert await admin.balance("console", "alice") == 105


async def test_reused_idempotency_key_with_another_reason_is_409(admin, chat):
    await checked_in_alice(chat)
    first = {"amount": -2, "reason": "typo", "idempotency_key": "adj-1"}
    await admin.points("console", "alice", first)

    status, body = await admin.points("console", "alice", {**first, "reason": "other"})

    assert (status, body["applied"]["amount"], body["applied"]["reason"]) == (409, -2, "typo")
    assert await admin.balance("console", "alice") == 3


async def test_chinese_in_answers_is_not_escaped(http):
    body = {"names": {"zh_CN": "咖啡爱好者"}}

    async with http.put("/api/communities/coffee", json=body, headers=AUTH) as resp:
        raw = await resp.text()

    assert resp.status == 201
    assert '"咖啡爱好者"' in raw
    assert "\\u" not in raw
