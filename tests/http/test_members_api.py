"""The operator API over members: bearer token, member JSON, ledger order, point adjustments."""

from __future__ import annotations

import re

import pytest

from storage import members
from tests.conftest import ADMIN_TOKEN
from tests.http.conftest import AUTH, raw_status_line

MEMBER_PATHS = [
    ("GET", "/api/members/console/alice"),
    ("GET", "/api/members/console/alice/ledger"),
    ("POST", "/api/members/console/alice/points"),
]


async def _checked_in_alice(chat) -> None:
    reply = await chat("alice").say("checkin")
    assert reply is not None and reply.text.startswith("Checked in! +5 points")


WRONG_AUTHORIZATIONS = [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Bearer wrong-token",
    f"Bearer {ADMIN_TOKEN}x",
    f"Basic {ADMIN_TOKEN}",
    ADMIN_TOKEN,
]


@pytest.mark.parametrize(("method", "path"), MEMBER_PATHS, ids=["member", "ledger", "points"])
async def test_missing_or_wrong_token_is_401(http, admin, chat, method, path):
    await _checked_in_alice(chat)
    payload = {"amount": 100, "reason": "x", "idempotency_key": "k1"}

    for authorization in WRONG_AUTHORIZATIONS:
        headers = {} if authorization is None else {"Authorization": authorization}
        async with http.request(method, path, headers=headers, json=payload) as resp:
            answer = (resp.status, await resp.json())
        assert answer == (401, {"error": "missing or wrong bearer token"}), authorization

    assert await admin.balance("console", "alice") == 5  # nothing adjusted


async def test_non_utf8_authorization_header_is_401_not_a_crash(http, chat):
    await _checked_in_alice(chat)

    status_line = await raw_status_line(
        http,
        b"GET /api/members/console/alice HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n",
    )

    assert status_line == b"HTTP/1.1 401 Unauthorized"


async def test_admin_api_refuses_everyone_when_admin_token_is_unset(core, http, chat):
    await _checked_in_alice(chat)
    settings = core.services.settings
    core.services.settings = settings.model_copy(update={"admin_token": None})
    try:
        for authorization in (f"Bearer {ADMIN_TOKEN}", "Bearer None", "Bearer "):
            async with http.get(
                "/api/members/console/alice", headers={"Authorization": authorization}
            ) as resp:
                assert resp.status == 401, authorization
    finally:
        core.services.settings = settings


@pytest.mark.parametrize("suffix", ["", "/ledger"])
async def test_unknown_member_is_404(admin, http, suffix):
    async with http.get(f"/api/members/telegram/nobody{suffix}", headers=AUTH) as resp:
        assert resp.status == 404
        assert await resp.json() == {"error": "unknown member"}


async def test_points_for_unknown_member_is_404_and_creates_nobody(admin):
    payload = {"amount": 100, "reason": "gift", "idempotency_key": "k1"}

    status, body = await admin.points("telegram", "nobody", payload)

    assert (status, body) == (404, {"error": "unknown member"})
    assert (await admin.member("telegram", "nobody"))[0] == 404


async def test_member_json_has_the_spec_fields_with_exact_values(core, admin, chat):
    await _checked_in_alice(chat)
    async with core.services.db.sessions() as session:
        stored = await members.find_by_identity(session, "console", "alice")
    assert stored is not None

    status, body = await admin.member("console", "alice")

    assert status == 200
    spec = ("id", "points", "growth", "tier", "streak", "invite_code", "locale", "identities")
    assert {k: body[k] for k in spec} == {
        "id": stored.id,
        "points": 5,
        "growth": 1,
        "tier": "bronze",
        "streak": 1,
        "invite_code": stored.invite_code,
        "locale": "en",
        "identities": [{"channel": "console", "external_id": "alice", "unreachable": False}],
    }
    assert re.fullmatch(r"[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{6}", body["invite_code"])


async def test_ledger_lists_entries_newest_first(admin, chat, clock):
    await _checked_in_alice(chat)
    for amount, key in ((100, "first"), (-30, "second"), (7, "third")):
        clock.advance(minutes=1)
        payload = {"amount": amount, "reason": f"fix {key}", "idempotency_key": key}
        assert (await admin.points("console", "alice", payload))[0] == 200

    status, entries = await admin.ledger("console", "alice")

    assert status == 200
    assert [(e["kind"], e["amount"], e["reason"]) for e in entries] == [
        ("adjust", 7, "fix third"),
        ("adjust", -30, "fix second"),
        ("adjust", 100, "fix first"),
        ("earn", 5, "checkin"),
    ]
    stamps = [e["created_at"] for e in entries]
    assert stamps == sorted(stamps, reverse=True)


async def test_positive_adjustment_is_applied(admin, chat):
    await _checked_in_alice(chat)
    payload = {"amount": 100, "reason": "apology", "idempotency_key": "adj-1"}

    status, body = await admin.points("console", "alice", payload)

    assert (status, body) == (200, {"applied": True, "amount": 100, "balance": 105})
    assert await admin.balance("console", "alice") == 105


async def test_same_idempotency_key_again_is_not_applied(admin, chat):
    await _checked_in_alice(chat)
    payload = {"amount": 100, "reason": "apology", "idempotency_key": "adj-1"}
    await admin.points("console", "alice", payload)

    status, body = await admin.points("console", "alice", payload)

    assert (status, body) == (200, {"applied": False, "amount": 0, "balance": 105})
    assert await admin.balance("console", "alice") == 105
    _, entries = await admin.ledger("console", "alice")
    assert [e["amount"] for e in entries] == [100, 5]


async def test_same_key_for_a_debit_again_is_not_applied(admin, chat):
    await _checked_in_alice(chat)
    payload = {"amount": -3, "reason": "correction", "idempotency_key": "adj-neg"}
    assert (await admin.points("console", "alice", payload))[1]["balance"] == 2

    status, body = await admin.points("console", "alice", payload)

    assert (status, body) == (200, {"applied": False, "amount": 0, "balance": 2})


async def test_debit_beyond_balance_is_409_with_reason_and_balance(admin, chat):
    await _checked_in_alice(chat)
    await admin.points("console", "alice", {"amount": 95, "reason": "x", "idempotency_key": "a"})

    status, body = await admin.points(
        "console", "alice", {"amount": -1000, "reason": "oops", "idempotency_key": "b"}
    )

    assert status == 409
    assert body["balance"] == 100
    assert isinstance(body["error"], str) and body["error"]
    assert await admin.balance("console", "alice") == 100


@pytest.mark.parametrize(
    "payload",
    [
        {"amount": 0, "reason": "x", "idempotency_key": "k"},
        {"amount": 1.5, "reason": "x", "idempotency_key": "k"},
        {"amount": "100", "reason": "x", "idempotency_key": "k"},
        {"amount": True, "reason": "x", "idempotency_key": "k"},
        {"amount": None, "reason": "x", "idempotency_key": "k"},
        {"reason": "x", "idempotency_key": "k"},
        {"amount": 10**12, "reason": "x", "idempotency_key": "k"},
        {"amount": 100, "idempotency_key": "k"},
        {"amount": 100, "reason": "", "idempotency_key": "k"},
        {"amount": 100, "reason": "   ", "idempotency_key": "k"},
        {"amount": 100, "reason": 5, "idempotency_key": "k"},
        {"amount": 100, "reason": "x" * 65, "idempotency_key": "k"},
        {"amount": 100, "reason": "x"},
        {"amount": 100, "reason": "x", "idempotency_key": ""},
    ],
    ids=[
        "zero",
        "fraction",
        "string",
        "bool",
        "null",
        "missing-amount",
        "too-large",
        "missing-reason",
        "empty-reason",
        "blank-reason",
        "number-reason",
        "long-reason",
        "missing-key",
        "empty-key",
    ],
)
async def test_invalid_adjustment_is_422_and_moves_nothing(admin, chat, payload):
    await _checked_in_alice(chat)

    status, body = await admin.points("console", "alice", payload)

    assert status == 422
    assert isinstance(body["error"], str)
    assert await admin.balance("console", "alice") == 5


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'{"amount": 100,', "malformed JSON"),
        (b"\xff", "malformed JSON"),
        (b'[{"amount": 100, "reason": "x", "idempotency_key": "k"}]', "expected a JSON object"),
    ],
    ids=["broken", "not-utf8", "array"],
)
async def test_malformed_points_body_is_400(http, chat, raw, error):
    await _checked_in_alice(chat)
    headers = {**AUTH, "Content-Type": "application/json"}

    async with http.post("/api/members/console/alice/points", data=raw, headers=headers) as resp:
        status, body = resp.status, await resp.json()

    assert (status, body) == (400, {"error": error})


async def test_odd_external_ids_and_texts_are_refused_not_500(admin, http, chat):
    async with http.get("/api/members/telegram/10%00", headers=AUTH) as resp:
        assert resp.status == 404
    await chat("alice").say("checkin")
    bad_reason = {"amount": 1, "reason": "gift\u0000", "idempotency_key": "k1"}
    bad_key = {"amount": 1, "reason": "gift", "idempotency_key": "\ud800"}

    assert (await admin.points("console", "alice", bad_reason))[0] == 422
    assert (await admin.points("console", "alice", bad_key))[0] == 422
