"""A message or an order in flight while its member is folded into another by linking: what
it wrote is rolled back and it is done once more, for the merged member."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.app import Core
from handlers import orders as order_handlers
from handlers.orders import OrderIn
from storage import members
from storage.models import Member
from tests.handlers.conftest import Entry, Probe
from tests.handlers.test_link import link_code


@pytest.fixture
async def linked(chat, probe: Probe) -> tuple[Member, Member]:
    """Alice on the console (survivor) and her Telegram account, folded into her."""
    alice, alice_tg = chat("alice"), chat("alice-tg", channel="telegram")
    await alice.say("hi")  # the older of the two: she survives
    stale = await probe.member(alice_tg)  # what an in-flight message looked up before the link
    await alice_tg.say(await link_code(alice))
    return await probe.member(alice), stale


def stale_first(monkeypatch: pytest.MonkeyPatch, module: object, stale: Member) -> None:
    """The first lookup returns the member as it was before the link, later ones the truth."""
    real = members.get_or_create
    calls = []

    async def lookup(*args: object, **kwargs: object) -> tuple[Member, bool]:
        calls.append(1)
        if len(calls) == 1:
            return stale, False
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module.members, "get_or_create", lookup)  # type: ignore[attr-defined]


async def test_a_checkin_looked_up_before_the_link_credits_the_merged_member(
    core: Core, chat, probe: Probe, linked, monkeypatch: pytest.MonkeyPatch
):
    survivor, stale = linked
    from bot.core import middleware

    stale_first(monkeypatch, middleware, stale)

    reply = await chat("alice-tg", channel="telegram").say("checkin")

    assert reply is not None
    assert reply.text.startswith("Checked in! +5 points, 1-day streak. Balance: 5.")
    assert await probe.entries(chat("alice")) == [Entry("earn", 5, "checkin")]
    assert stale.id != survivor.id


async def test_an_order_looked_up_before_the_link_credits_the_merged_member(
    core: Core, chat, probe: Probe, linked, monkeypatch: pytest.MonkeyPatch
):
    survivor, stale = linked
    stale_first(monkeypatch, order_handlers, stale)
    order = OrderIn("A-1", "telegram", "alice-tg", Decimal("30.00"), "CNY", "paid")

    outcome = await order_handlers.apply_order(core.services, order)

    assert (outcome.member_id, outcome.result, outcome.points) == (survivor.id, "credited", 30)
    assert await probe.balance(chat("alice")) == 30
    assert (await probe.member(chat("alice"))).growth == 30
