"""`/tier`: the tier held, its benefits, a progress bar and the growth still needed."""

from __future__ import annotations

import pytest

from tests.conftest import PRIVACY_LINE


async def test_new_member_sees_bronze_with_empty_bar_and_500_to_silver(chat):
    reply = await chat("alice").say("/tier")

    assert reply is not None
    assert reply.text == (
        "Your tier: Bronze (points ×1)\n"
        "Growth: 0\n"
        "Benefits:\n"
        "• Daily check-in points\n"
        "• Double check-in points on your birthday\n"
        "░░░░░░░░░░ 0%\n"
        "500 more growth to Silver" + PRIVACY_LINE
    )
    assert reply.private is True


async def test_a_checkin_counts_one_growth_toward_silver(chat):
    alice = chat("alice")
    await alice.say("checkin")

    reply = await alice.say("等级")

    assert reply is not None
    assert reply.text.splitlines()[1] == "Growth: 1"
    assert reply.text.splitlines()[-1] == "499 more growth to Silver"


async def test_halfway_to_silver_fills_half_the_bar(chat, probe):
    alice = chat("alice")
    await probe.set_growth(alice, 250, "bronze")

    reply = await alice.say("tier")

    assert reply is not None
    assert reply.text.splitlines()[-2:] == ["▓▓▓▓▓░░░░░ 50%", "250 more growth to Silver"]


@pytest.mark.parametrize(
    ("tier", "growth", "header", "bar", "needed"),
    [
        (
            "silver",
            1700,
            "Your tier: Silver (points ×1.2)",
            "▓▓▓▓▓▓▓▓░░ 80%",
            "300 more growth to Gold",
        ),
        (
            "gold",
            6000,
            "Your tier: Gold (points ×1.5)",
            "▓▓▓▓▓░░░░░ 50%",
            "4000 more growth to Diamond",
        ),
    ],
)
async def test_progress_is_measured_from_the_tier_held_to_the_next(
    chat, probe, tier, growth, header, bar, needed
):
    alice = chat("alice")
    await probe.set_growth(alice, growth, tier)

    reply = await alice.say("会员")

    assert reply is not None
    lines = reply.text.splitlines()
    assert lines[0] == header
    assert lines[1] == f"Growth: {growth}"
    assert lines[-2:] == [bar, needed]


async def test_silver_lists_its_benefits(chat, probe):
    alice = chat("alice")
    await probe.set_growth(alice, 500, "silver")

    reply = await alice.say("/tier")

    assert reply is not None
    assert reply.text == (
        "Your tier: Silver (points ×1.2)\n"
        "Growth: 500\n"
        "Benefits:\n"
        "• Daily check-in points\n"
        "• Double check-in points on your birthday\n"
        "• 1.2× points on purchases and check-ins\n"
        "• Members-only communities\n"
        "░░░░░░░░░░ 0%\n"
        "1500 more growth to Gold"
    )


async def test_top_tier_says_so_instead_of_a_progress_bar(chat, probe):
    alice = chat("alice")
    await probe.set_growth(alice, 12000, "diamond")

    reply = await alice.say("/tier")

    assert reply is not None
    assert reply.text == (
        "Your tier: Diamond (points ×2)\n"
        "Growth: 12000\n"
        "Benefits:\n"
        "• Daily check-in points\n"
        "• Double check-in points on your birthday\n"
        "• 2× points on purchases and check-ins\n"
        "• Members-only communities\n"
        "• Early access to flash sales\n"
        "• Priority support\n"
        "You are at the top tier. Thank you!"
    )


async def test_tier_after_an_upgrade_by_checkin_shows_the_new_tier(chat, probe):
    alice = chat("alice")
    await probe.set_growth(alice, 1999, "silver")
    await alice.say("checkin")

    reply = await alice.say("/tier")

    assert reply is not None
    assert reply.text.splitlines()[0] == "Your tier: Gold (points ×1.5)"
    assert reply.text.splitlines()[-2:] == ["░░░░░░░░░░ 0%", "8000 more growth to Diamond"]


async def test_progress_percentage_is_exact_not_rounded_down_by_float_error(chat, probe):
    alice = chat("alice")
    await probe.set_growth(alice, 145, "bronze")  # 145/500 is 29 %, 0.29 * 100 in floats is 28.99

    reply = await alice.say("/tier")

    assert reply is not None
    assert reply.text.splitlines()[-2:] == ["▓▓░░░░░░░░ 29%", "355 more growth to Silver"]
