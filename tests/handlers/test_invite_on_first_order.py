"""`invites.reward_on = "first_order"`: the inviter is paid at the invitee's first paid order."""

from __future__ import annotations

import pytest

from bot.admin.orders import post_order
from bot.app import Core
from tests.handlers.test_invites import code_of

FIRST_ORDER = (
    "A friend you invited placed their first order: +50 points and +50 growth for you. "
    "Balance: {balance}."
)


@pytest.fixture
def on_first_order(core: Core) -> None:
    rules = core.services.rules
    invites = rules.invites.model_copy(update={"reward_on": "first_order"})
    core.services.rules = rules.model_copy(update={"invites": invites})


def order(order_id: str, status: str = "paid") -> dict[str, object]:
    return {
        "order_id": order_id,
        "channel": "console",
        "external_id": "bob",
        "amount": "10.00",
        "currency": "CNY",
        "status": status,
    }


async def test_the_inviter_waits_for_the_first_order_then_is_paid_once(
    core, chat, probe, on_first_order
):
    alice, bob = chat("alice"), chat("bob")
    await bob.say(f"invite {await code_of(alice)}")

    await bob.say("checkin")
    assert await probe.balance(alice) == 0
    assert alice.pushed() == []

    await post_order(core.services, order("B-1"))
    await post_order(core.services, order("B-1"))
    await post_order(core.services, order("B-2"))

    await core.services.pushes.settle()  # the outbox sends what the orders queued
    assert [p.text for p in alice.pushed()] == [FIRST_ORDER.format(balance=50)]
    assert await probe.balance(alice) == 50
    assert (await probe.member(alice)).growth == 50
