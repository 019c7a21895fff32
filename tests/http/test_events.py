"""POST /api/events: other deeds credited once per event id, within daily caps per type."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.http.conftest import SIGNATURE_HEADER, sign


@pytest.fixture
def post_event(http):
    async def post(
        event_id="E-1", *, type="review", external_id="1001", signature="auto", channel="telegram"
    ):
        body = json.dumps(
            {"event_id": event_id, "channel": channel, "external_id": external_id, "type": type}
        ).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "auto":
            headers[SIGNATURE_HEADER] = sign(body)
        elif signature is not None:
            headers[SIGNATURE_HEADER] = signature
        async with http.post("/api/events", data=body, headers=headers) as resp:
            return resp.status, await resp.json()

    return post


async def test_a_review_is_credited_by_the_earning_table(post_event, admin):
    status, body = await post_event("E-1")

    assert status == 200
    assert body == {
        "event_id": "E-1",
        "member_id": body["member_id"],
        "type": "review",
        "result": "credited",
        "points": 10,
        "growth": 5,
        "tier": "bronze",
    }
    assert await admin.balance() == 10
    status, entries = await admin.ledger()
    assert [(e["kind"], e["amount"], e["idempotency_key"]) for e in entries] == [
        ("earn", 10, "event:E-1")
    ]


async def test_twenty_concurrent_posts_of_one_event_credit_once(post_event, admin):
    answers = await asyncio.gather(*(post_event("E-1") for _ in range(20)))

    assert all(status == 200 for status, _ in answers)
    assert sorted(b["result"] for _, b in answers) == ["credited"] + ["duplicate"] * 19
    assert await admin.balance() == 10


async def test_the_daily_cap_per_type_holds_under_concurrency(post_event, admin, clock):
    answers = await asyncio.gather(*(post_event(f"S-{i}", type="share") for i in range(6)))

    assert sorted(b["result"] for _, b in answers) == ["capped"] * 3 + ["credited"] * 3
    assert await admin.balance() == 15
    assert (await post_event("R-1"))[1]["result"] == "credited"  # another type: its own cap
    clock.advance(days=1)
    assert (await post_event("S-9", type="share"))[1]["result"] == "credited"
    assert await admin.balance() == 30


async def test_one_event_id_belongs_to_one_member(post_event, admin):
    await post_event("E-1")
    status, body = await post_event("E-1", external_id="2002")
    assert status == 409
    assert body["error"] == "event_id E-1 was reported for another member"
    assert (await admin.member("telegram", "2002"))[0] == 404


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        ({"type": "dance"}, 422, "type"),
        ({"event_id": ""}, 422, "event_id"),
        ({"channel": "fax"}, 422, "channel"),
        ({"signature": "sha256=00"}, 403, None),
        ({"signature": None}, 403, None),
    ],
)
async def test_bad_events_are_refused(post_event, admin, kwargs, status, field):
    answer = await post_event(**kwargs)
    assert answer[0] == status
    assert answer[1].get("field") == field
    assert (await admin.member())[0] == 404
