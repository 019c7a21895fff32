"""POST /api/orders end to end: signed orders credit once, refunds reverse, bad input refused."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.http.conftest import order_body, raw_status_line, sign


async def test_paid_order_credits_floor_of_amount_in_points_and_growth(post_order, admin):
    status, body = await post_order("A-1", amount="99.90")

    assert status == 200
    _, member = await admin.member("telegram", "1001")
    assert body == {
        "order_id": "A-1",
        "member_id": member["id"],
        "result": "credited",
        "points": 99,
        "growth": 99,
        "tier": "bronze",
    }
    assert (member["points"], member["growth"], member["tier"]) == (99, 99, "bronze")


async def test_order_for_unseen_member_creates_the_member(post_order, admin):
    status, _ = await admin.member("wechat", "o-new-openid")
    assert status == 404

    status, body = await post_order(
        "W-1", channel="wechat", external_id="o-new-openid", amount="10"
    )

    assert (status, body["result"], body["points"]) == (200, "credited", 10)
    status, member = await admin.member("wechat", "o-new-openid")
    assert status == 200
    assert member["id"] == body["member_id"]
    assert member["points"] == 10
    assert member["identities"] == [
        {"channel": "wechat", "external_id": "o-new-openid", "unreachable": False}
    ]


async def test_same_paid_order_twice_second_is_duplicate_and_changes_nothing(post_order, admin):
    await post_order("A-1", amount="50.00")

    status, body = await post_order("A-1", amount="50.00")

    assert status == 200
    assert (body["result"], body["points"], body["growth"]) == ("duplicate", 0, 0)
    _, member = await admin.member()
    assert (member["points"], member["growth"]) == (50, 50)


async def test_twenty_concurrent_posts_of_one_order_credit_exactly_once(post_order, admin):
    answers = await asyncio.gather(*(post_order("RACE-1", amount="30.00") for _ in range(20)))

    assert [status for status, _ in answers] == [200] * 20
    results = sorted(body["result"] for _, body in answers)
    assert results == ["credited"] + ["duplicate"] * 19
    _, member = await admin.member()
    assert (member["points"], member["growth"]) == (30, 30)
    _, entries = await admin.ledger()
    assert [(e["kind"], e["amount"], e["idempotency_key"]) for e in entries] == [
        ("earn", 30, "order:RACE-1")
    ]


async def test_refund_reverses_points_and_growth(post_order, admin):
    await post_order("A-1", amount="99.90")

    status, body = await post_order("A-1", amount="99.90", status="refunded")

    assert status == 200
    assert (body["result"], body["points"], body["growth"]) == ("reversed", -99, -99)
    _, member = await admin.member()
    assert (member["points"], member["growth"]) == (0, 0)
    _, entries = await admin.ledger()
    assert [(e["kind"], e["amount"]) for e in entries] == [("reverse", -99), ("earn", 99)]


async def test_refund_after_points_were_spent_takes_back_only_the_balance(post_order, admin):
    await post_order("A-1", amount="100")
    spent = {"amount": -60, "reason": "gift", "idempotency_key": "spend-1"}
    assert (await admin.points("telegram", "1001", spent))[0] == 200

    status, body = await post_order("A-1", amount="100", status="refunded")

    assert (status, body["result"], body["points"], body["growth"]) == (200, "reversed", -40, -100)
    _, member = await admin.member()
    assert (member["points"], member["growth"]) == (0, 0)


async def test_refund_twice_second_has_no_effect(post_order, admin):
    await post_order("A-1", amount="80")
    await post_order("B-1", amount="20")
    await post_order("A-1", amount="80", status="refunded")

    status, body = await post_order("A-1", amount="80", status="refunded")

    assert (status, body["result"], body["points"], body["growth"]) == (200, "duplicate", 0, 0)
    _, member = await admin.member()
    assert (member["points"], member["growth"]) == (20, 20)


async def test_refund_for_unknown_order_is_recorded_and_a_later_paid_credits_nothing(
    post_order, admin
):
    status, body = await post_order("LATE-1", amount="70", status="refunded")
    assert (status, body["result"], body["points"], body["growth"]) == (
        200,
        "refund_recorded",
        0,
        0,
    )

    status, body = await post_order("LATE-1", amount="70", status="paid")

    assert (status, body["result"], body["points"]) == (200, "duplicate", 0)
    _, member = await admin.member()
    assert (member["points"], member["growth"]) == (0, 0)
    assert (await admin.ledger())[1] == []


async def test_order_crossing_a_tier_uses_old_multiplier_then_new_one_for_the_next(
    post_order, admin
):
    status, body = await post_order("UP-1", amount="500.00")
    assert (status, body["points"], body["growth"], body["tier"]) == (200, 500, 500, "silver")

    status, body = await post_order("UP-2", amount="99.90")

    # floor(99.90 × 1.2) = floor(119.88) = 119
    assert (status, body["points"], body["growth"], body["tier"]) == (200, 119, 99, "silver")
    _, member = await admin.member()
    assert (member["points"], member["growth"], member["tier"]) == (619, 599, "silver")


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=" + "0" * 64,
        "sha1=abc",
        sign(b"another body"),
        "sha256=zz\u00e9",
    ],
    ids=["missing", "empty", "zeros", "wrong-scheme", "other-body", "non-ascii"],
)
async def test_bad_or_missing_signature_is_403_and_credits_nothing(post_raw, admin, signature):
    body = order_body("A-1", amount="10")

    status, answer = await post_raw(body, signature)

    assert status == 403
    assert answer == {"error": "bad or missing signature"}
    assert (await admin.member())[0] == 404


async def test_non_utf8_signature_header_is_403_not_a_crash(http, admin):
    body = order_body("A-1", amount="10")
    head = (
        f"POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n"
    ).encode()

    status_line = await raw_status_line(
        http, head + b"X-Memberbot-Signature: sha256=\xff\xfe\r\n\r\n" + body
    )

    assert status_line == b"HTTP/1.1 403 Forbidden"
    assert (await admin.member())[0] == 404


async def test_signature_over_another_secret_is_403(post_raw):
    body = order_body("A-1", amount="10")

    status, _ = await post_raw(body, sign(body, "not-the-shop-secret"))

    assert status == 403


async def test_orders_refused_when_shop_secret_is_unset(core, post_raw, admin):
    settings = core.services.settings
    core.services.settings = settings.model_copy(update={"shop_secret": None})
    body = order_body("A-1", amount="10")

    status, _ = await post_raw(body, sign(body))

    assert status == 403
    core.services.settings = settings
    assert (await admin.member())[0] == 404


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"\xff\xfe{}", b"[" * 5000, b'{"amount": ' + b"9" * 5000 + b"}"],
    ids=["broken", "empty", "not-utf8", "deeply-nested", "huge-integer"],
)
async def test_malformed_json_is_400(post_raw, body):
    status, answer = await post_raw(body)

    assert status == 400
    assert answer == {"error": "malformed JSON"}


async def test_json_array_is_400(post_raw):
    status, answer = await post_raw(b"[" + order_body("A-1") + b"]")

    assert status == 400
    assert answer == {"error": "expected a JSON object"}


async def test_unknown_channel_is_422(post_order, admin):
    status, answer = await post_order("A-1", channel="whatsapp")

    assert status == 422
    assert "channel" in answer["error"]
    assert (await admin.member("whatsapp", "1001"))[0] == 404


@pytest.mark.parametrize(
    "amount", ["-1", "0", "abc", 5, "NaN", "Infinity", "1e100", "12.345", None, ""]
)
async def test_bad_amount_is_422_and_credits_nothing(post_order, admin, amount):
    status, answer = await post_order("A-1", amount=amount)

    assert status == 422
    assert "amount" in answer["error"]
    assert (await admin.member())[0] == 404


async def test_rejected_amount_does_not_burn_the_order_id(post_order):
    await post_order("A-1", amount="12.345")

    status, body = await post_order("A-1", amount="12.34")

    assert (status, body["result"], body["points"]) == (200, "credited", 12)


async def test_body_over_64_kib_is_413(post_raw, admin):
    padded = json.loads(order_body("A-1", amount="10"))
    padded["note"] = "x" * (64 * 1024)
    body = json.dumps(padded).encode()

    status, _ = await post_raw(body)

    assert status == 413
    assert (await admin.member())[0] == 404


async def test_refund_racing_its_paid_order_is_never_lost(post_order, admin):
    for n in range(15):
        paid, refund = await asyncio.gather(
            post_order(f"R-{n}", amount="10"),
            post_order(f"R-{n}", amount="10", status="refunded"),
        )
        results = {paid[1]["result"], refund[1]["result"]}
        assert results in ({"credited", "reversed"}, {"duplicate", "refund_recorded"}), n

    _, member = await admin.member()
    assert (member["points"], member["growth"]) == (0, 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("external_id", "10\u0000"),
        ("external_id", "\ud800"),
        ("order_id", "A\u0000"),
        ("currency", "C\x07"),
    ],
)
async def test_control_characters_in_ids_are_422_and_create_nobody(post_order, admin, field, value):
    fields = {"order_id": "A-1", field: value}
    status, answer = await post_order(fields.pop("order_id"), **fields)

    assert status == 422
    assert answer["error"].startswith(field)
    assert (await admin.member())[0] == 404
