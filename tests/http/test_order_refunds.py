"""Partial refunds: each by its refund id, pro rata, never more than was paid or credited."""

from __future__ import annotations

import asyncio
import json

from storage import ledger
from tests.http.conftest import order_body


def refund(order_id: str, amount: str, refund_id: str | None = None, **fields: object) -> bytes:
    data = json.loads(order_body(order_id, amount=amount, status="refunded", **fields))
    if refund_id is not None:
        data["refund_id"] = refund_id
    return json.dumps(data).encode()


async def balance_and_growth(admin) -> tuple[int, int]:
    _, member = await admin.member()
    return member["points"], member["growth"]


async def ledger_matches_balance(core, admin) -> bool:
    _, member = await admin.member()
    async with core.services.db.reader() as session:
        return await ledger.ledger_sum(session, member["id"]) == member["points"]


async def test_partial_refund_reverses_its_share_of_points_and_growth(post_order, post_raw, admin):
    await post_order("P-1", amount="100.00")

    status, body = await post_raw(refund("P-1", "30.00", "r1"))

    assert (status, body) == (
        200,
        {
            "order_id": "P-1",
            "member_id": body["member_id"],
            "result": "reversed",
            "points": -30,
            "growth": -30,
            "tier": "bronze",
            "refund_id": "r1",
            "refunded": "30.00",
        },
    )
    assert await balance_and_growth(admin) == (70, 70)


async def test_partial_refunds_floor_each_share_and_the_last_takes_what_remains(
    core, post_order, post_raw, admin
):
    await post_order("P-1", amount="10.00")

    answers = [await post_raw(refund("P-1", a, f"r{n}")) for n, a in enumerate(("3.33",) * 2)]
    last = await post_raw(refund("P-1", "3.34", "r-last"))

    # floor(10 × 3.33/10) = 3, floor(10 × 6.66/10) - 3 = 3, then the 4 that remain.
    assert [b["points"] for _, b in answers] + [last[1]["points"]] == [-3, -3, -4]
    assert [b["refunded"] for _, b in answers] + [last[1]["refunded"]] == [
        "3.33",
        "6.66",
        "10.00",
    ]
    assert await balance_and_growth(admin) == (0, 0)
    assert await ledger_matches_balance(core, admin)


async def test_same_refund_id_twice_has_no_effect(post_order, post_raw, admin):
    await post_order("P-1", amount="100.00")
    await post_raw(refund("P-1", "40.00", "r1"))

    status, body = await post_raw(refund("P-1", "40.00", "r1"))

    assert (status, body["result"], body["points"], body["growth"], body["refunded"]) == (
        200,
        "duplicate",
        0,
        0,
        "40.00",
    )
    assert await balance_and_growth(admin) == (60, 60)


async def test_same_refund_id_with_another_amount_is_409_showing_the_first(
    post_order, post_raw, admin
):
    await post_order("P-1", amount="100.00")
    await post_raw(refund("P-1", "40.00", "r1"))

    status, body = await post_raw(refund("P-1", "50.00", "r1"))

    assert (status, body) == (
        409,
        {
            "error": "refund r1 of order P-1 was 40.00, not 50.00",
            "refund_id": "r1",
            "amount": "40.00",
        },
    )
    assert await balance_and_growth(admin) == (60, 60)


async def test_refund_beyond_what_is_left_is_409_and_changes_nothing(post_order, post_raw, admin):
    await post_order("P-1", amount="100.00")
    await post_raw(refund("P-1", "70.00", "r1"))

    status, body = await post_raw(refund("P-1", "30.01", "r2"))

    assert (status, body) == (
        409,
        {
            "error": "refund of 30.01 exceeds what is left to refund of order P-1 "
            "(30.00 of 100.00)",
            "field": "amount",
            "refundable": "30.00",
        },
    )
    assert await balance_and_growth(admin) == (30, 30)
    status, body = await post_raw(refund("P-1", "30.00", "r2"))
    assert (status, body["points"], body["refunded"]) == (200, -30, "100.00")


async def test_partial_refund_without_refund_id_is_422_naming_refund_id(
    post_order, post_raw, admin
):
    await post_order("P-1", amount="100.00")

    status, body = await post_raw(refund("P-1", "1"))

    assert (status, body) == (
        422,
        {"error": "refund_id is required for a partial refund (1 of 100.00)", "field": "refund_id"},
    )
    assert await balance_and_growth(admin) == (100, 100)


async def test_whole_refund_after_a_partial_one_is_409(post_order, post_raw, admin):
    await post_order("P-1", amount="100.00")
    await post_raw(refund("P-1", "10.00", "r1"))

    status, body = await post_raw(refund("P-1", "100.00"))

    assert (status, body["field"], body["refundable"]) == (409, "amount", "90.00")
    assert await balance_and_growth(admin) == (90, 90)


async def test_refund_in_another_currency_than_the_order_is_422(core, post_order, post_raw):
    rules = core.services.rules
    both = rules.orders.model_copy(update={"currencies": ("CNY", "USD")})
    core.services.rules = rules.model_copy(update={"orders": both})
    await post_order("P-1", amount="100.00")

    status, body = await post_raw(refund("P-1", "100.00", currency="USD"))

    assert (status, body) == (
        422,
        {"error": "currency must be CNY, the order's", "field": "currency"},
    )


async def test_refund_id_on_a_paid_order_is_422(post_raw):
    data = json.loads(order_body("P-1", amount="10"))
    data["refund_id"] = "r1"

    status, body = await post_raw(json.dumps(data).encode())

    assert (status, body) == (
        422,
        {"error": "refund_id goes with status refunded only", "field": "refund_id"},
    )


async def test_concurrent_partial_refunds_never_reverse_more_than_was_credited(
    core, post_order, post_raw, admin
):
    await post_order("P-1", amount="50.00")

    answers = await asyncio.gather(*(post_raw(refund("P-1", "2.50", f"r{n}")) for n in range(30)))

    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * 20 + [409] * 10
    assert sum(b["points"] for s, b in answers if s == 200) == -50
    assert sum(b["growth"] for s, b in answers if s == 200) == -50
    assert await balance_and_growth(admin) == (0, 0)
    assert await ledger_matches_balance(core, admin)


async def test_concurrent_copies_of_one_refund_apply_once(core, post_order, post_raw, admin):
    await post_order("P-1", amount="50.00")

    answers = await asyncio.gather(*(post_raw(refund("P-1", "20.00", "r1")) for _ in range(15)))

    assert sorted(b["result"] for _, b in answers) == ["duplicate"] * 14 + ["reversed"]
    assert await balance_and_growth(admin) == (30, 30)
    _, entries = await admin.ledger()
    assert [(e["kind"], e["amount"]) for e in entries] == [("reverse", -20), ("earn", 50)]
    assert await ledger_matches_balance(core, admin)
