"""A tier's `discount` for the shop's till: shown on /tier and in the member JSON."""

from __future__ import annotations

import pytest

from bot.app import Core
from tests.http.conftest import AUTH


@pytest.fixture
def silver_discount(core: Core) -> None:
    rules = core.services.rules
    tiers = tuple(
        t.model_copy(update={"discount": 0.98}) if t.name == "silver" else t for t in rules.tiers
    )
    core.services.rules = rules.model_copy(update={"tiers": tiers})


async def test_tier_shows_the_discount_of_the_tier_held(chat, probe, silver_discount):
    alice = chat("alice")
    await probe.set_growth(alice, 500, "silver")

    reply = await alice.say("/tier")

    assert reply.text == (
        "Your tier: Silver (points ×1.2)\n"
        "Growth: 500\n"
        "Benefits:\n"
        "• Daily check-in points\n"
        "• Double check-in points on your birthday\n"
        "• 1.2× points on purchases and check-ins\n"
        "• Members-only communities\n"
        "• Discount at the shop's till: 2%\n"
        "░░░░░░░░░░ 0%\n"
        "1500 more growth to Gold"
    )


async def test_no_discount_line_without_one(chat):
    reply = await chat("alice").say("/tier")
    assert "Discount at the shop" not in reply.text


async def test_member_json_carries_the_discount(http, chat, probe, silver_discount):
    alice = chat("alice")
    await alice.say("checkin")
    async with http.get("/api/members/console/alice", headers=AUTH) as resp:
        assert (await resp.json())["discount"] is None
    await probe.set_growth(alice, 500, "silver")
    async with http.get("/api/members/console/alice", headers=AUTH) as resp:
        assert (await resp.json())["discount"] == 0.98
