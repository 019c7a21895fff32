"""Orders: an order id belongs to one member, accepted currencies and amounts, 64-bit sums and
the stated bound on a balance."""

from __future__ import annotations

import pytest

from storage import ledger


async def test_paid_order_id_of_another_member_is_409_and_creates_nobody(post_order, admin):
    _, first = await post_order("A1002", external_id="1001", amount="50")

    status, body = await post_order("A1002", external_id="2002", amount="50")

    assert (status, body) == (
        409,
        {
            "error": f"order A1002 belongs to member {first['member_id']}, not to telegram:2002",
            "order_id": "A1002",
            "member_id": first["member_id"],
        },
    )
    assert (await admin.member("telegram", "2002"))[0] == 404
    assert await admin.balance("telegram", "1001") == 50


async def test_refund_naming_another_member_is_409_and_reverses_nothing(post_order, admin):
    _, first = await post_order("A1002", external_id="1001", amount="50")

    status, body = await post_order("A1002", external_id="3003", amount="50", status="refunded")

    owner = first["member_id"]
    assert (status, body["error"]) == (
        409,
        f"order A1002 belongs to member {owner}, not to telegram:3003",
    )
    assert (await admin.member("telegram", "3003"))[0] == 404
    _, member = await admin.member("telegram", "1001")
    assert (member["points"], member["growth"]) == (50, 50)


async def test_order_id_of_a_member_in_another_app_is_409(post_order, admin, chat):
    await chat("alice").say("help")
    await post_order("A-7", channel="console", external_id="alice", amount="5")

    status, _ = await post_order("A-7", channel="wechat", external_id="alice", amount="5")

    assert status == 409
    assert (await admin.member("wechat", "alice"))[0] == 404


async def test_currency_the_rules_do_not_accept_is_422(post_order, admin):
    status, body = await post_order("A-1", amount="10", currency="USD")

    assert (status, body) == (422, {"error": "currency must be one of CNY", "field": "currency"})
    assert (await admin.member())[0] == 404


async def test_currency_the_rules_accept_is_credited(core, post_order):
    rules = core.services.rules
    both = rules.orders.model_copy(update={"currencies": ("CNY", "USD")})
    core.services.rules = rules.model_copy(update={"orders": both})

    status, body = await post_order("A-1", amount="10", currency="USD")

    assert (status, body["result"], body["points"]) == (200, "credited", 10)


@pytest.mark.parametrize(
    "amount",
    ["1e3", "  1", "1 ", "+1", "1_000", "١٢", "１２", "1.", ".5", "0x10", "1,000"],
)
async def test_amount_must_be_a_plain_decimal_string(post_order, admin, amount):
    status, body = await post_order("A-1", amount=amount)

    assert (status, body) == (
        422,
        {"error": 'amount must be a decimal string such as "99.50"', "field": "amount"},
    )
    assert (await admin.member())[0] == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"order_id": ""}, "order_id"),
        ({"channel": "sms"}, "channel"),
        ({"external_id": "x" * 129}, "external_id"),
        ({"external_id": "\u0000"}, "external_id"),
        ({"status": "cancelled"}, "status"),
        ({"amount": "12.345"}, "amount"),
    ],
)
async def test_every_refused_field_is_named(post_order, fields, field):
    status, body = await post_order(**{"order_id": "A-1", **fields})

    assert (status, body["field"]) == (422, field)
    assert body["error"].startswith(field)


async def test_external_id_of_128_characters_is_accepted_on_both_backends(post_order, admin):
    long_id = "o" * 128

    status, body = await post_order("A-1", channel="wechat", external_id=long_id, amount="3")

    assert (status, body["points"]) == (200, 3)
    assert await admin.balance("wechat", long_id) == 3


async def test_sums_past_32_bits_are_kept_exactly(core, post_order, admin):
    # Issue 15's overflow (108 orders of the maximum for one member), in three big orders.
    limits = core.services.rules.limits.model_copy(update={"max_order_amount": 10**10})
    core.services.rules = core.services.rules.model_copy(update={"limits": limits})

    answers = [await post_order(f"BIG-{n}", amount="10000000000") for n in range(3)]

    # Bronze × 1 for the first, then diamond × 2.
    assert [(s, b["points"]) for s, b in answers] == [
        (200, 10**10),
        (200, 2 * 10**10),
        (200, 2 * 10**10),
    ]
    _, member = await admin.member()
    assert (member["points"], member["growth"], member["tier"]) == (
        5 * 10**10,
        3 * 10**10,
        "diamond",
    )
    _, entries = await admin.ledger()
    assert [(e["amount"], e["remaining"]) for e in entries] == [
        (2 * 10**10, 2 * 10**10),
        (2 * 10**10, 2 * 10**10),
        (10**10, 10**10),
    ]
    status, body = await post_order("BIG-0", amount="10000000000", status="refunded")
    assert (status, body["points"], body["growth"]) == (200, -(10**10), -(10**10))
    async with core.services.db.reader() as session:
        assert await ledger.ledger_sum(session, member["id"]) == 4 * 10**10


async def test_order_past_the_balance_bound_is_422_and_keeps_its_id(core, post_order, admin):
    limits = core.services.rules.limits.model_copy(update={"max_balance": 100})
    core.services.rules = core.services.rules.model_copy(update={"limits": limits})
    await post_order("A-1", amount="60")

    status, body = await post_order("A-2", amount="41")

    assert (status, body) == (
        422,
        {
            "error": "amount would take the member's points or growth past the limit of 100",
            "field": "amount",
        },
    )
    assert await admin.balance() == 60
    status, body = await post_order("A-2", amount="40")
    assert (status, body["result"], body["points"]) == (200, "credited", 40)


async def test_adjustment_past_the_balance_bound_is_422(core, post_order, admin):
    limits = core.services.rules.limits.model_copy(update={"max_balance": 100})
    core.services.rules = core.services.rules.model_copy(update={"limits": limits})
    await post_order("A-1", amount="60")

    status, body = await admin.points(
        "telegram", "1001", {"amount": 41, "reason": "gift", "idempotency_key": "k1"}
    )

    assert (status, body) == (
        422,
        {
            "error": "amount would take the balance past the limit of 100 points",
            "field": "amount",
            "balance": 60,
        },
    )
    assert await admin.balance() == 60
