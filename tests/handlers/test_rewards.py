"""The points mall through the console door: the list with what is missing, redeeming with
a confirmation (button or word), vouchers, lottery draws with their odds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.app import Core
from handlers import HOOKS
from handlers.rewards import expire_vouchers
from storage import ledger, rewards
from tests.handlers.conftest import Entry, Probe
from tests.handlers.test_link import link_code


@pytest.fixture
async def mall(core: Core) -> None:
    now = core.services.clock.now()
    async with core.services.db.transaction() as session:
        await rewards.upsert(
            session, "mug", {"names": {"en": "Coffee mug"}, "cost": 100, "stock": 2}, now
        )
        await rewards.upsert(
            session,
            "lounge",
            {"names": {"en": "Lounge pass"}, "cost": 50, "min_tier": "gold"},
            now,
        )
        await rewards.upsert(
            session,
            "luck",
            {"names": {"en": "Lucky draw"}, "cost": 20, "kind": "lottery"},
            now,
            [
                {"slug": "big", "names": {"en": "Big prize"}, "weight": 1, "stock": 1},
                {"slug": "small", "names": {"en": "Sticker"}, "weight": 3, "stock": None},
            ],
        )


async def give(core: Core, probe: Probe, who, amount: int) -> None:
    member = await probe.member(who)
    async with core.services.db.transaction() as session:
        await ledger.earn(
            session,
            member.id,
            amount,
            "gift",
            f"gift:{member.id}:{amount}",
            core.services.clock.now(),
            expiry_days=365,
        )


async def test_rewards_lists_what_can_be_redeemed_and_what_is_missing(core, chat, probe, mall):
    alice = chat("alice")
    await give(core, probe, alice, 80)

    reply = await alice.say("rewards")

    assert reply.text == (
        "Points mall (you have 80 points):\n"
        "• Lucky draw (luck) — 20 points — draw: “draw luck”\n"
        "• Lounge pass (lounge) — 50 points — Gold members only\n"
        "• Coffee mug (mug) — 100 points · 2 left — 20 more points"
    )


async def test_redeem_asks_then_yes_spends_and_gives_a_voucher(core, chat, probe, mall):
    alice = chat("alice")
    await give(core, probe, alice, 130)

    asked = await alice.say("/redeem mug")
    assert asked.text == (
        "Redeem Coffee mug for 100 points? You have 130. "
        "Press the button or reply “yes” (确认) to confirm; anything else cancels."
    )
    assert [b.label for b in asked.buttons] == ["Confirm"]
    assert await probe.balance(alice) == 130

    done = await alice.say("yes")

    assert done.text.startswith("Redeemed Coffee mug! Your voucher code: ")
    assert done.text.endswith(
        "(show it at the till; valid until 2026-04-09). Points left: 30.\n"
        "🏅 New badge: First reward redeemed!"
    )
    assert await probe.balance(alice) == 30
    assert (await probe.entries(alice))[-1] == Entry("spend", -100, "redeem mug")
    listed = await alice.say("vouchers")
    code = done.text.split("code: ")[1].split(" ")[0]
    assert listed.text == f"Your vouchers:\n• {code} — Coffee mug — valid, until 2026-04-09"


async def test_the_button_confirms_once_however_often_pressed(core, chat, probe, mall):
    alice = chat("alice")
    await give(core, probe, alice, 500)
    await alice.say("兑换 mug")

    first = await alice.say("1")
    again = await alice.say("/redeem mug")
    assert again.buttons
    second = await alice.say("确认")

    assert first.text.startswith("Redeemed Coffee mug!")
    assert second.text.startswith("Redeemed Coffee mug!")
    assert await probe.balance(alice) == 300
    async with core.services.db.reader() as session:
        assert (await rewards.by_slug(session, "mug")).stock == 0
    sold = await alice.say("redeem mug")
    assert sold.text == "You cannot redeem Coffee mug now: sold out."


async def test_anything_else_cancels_the_redemption(core, chat, probe, mall):
    alice = chat("alice")
    await give(core, probe, alice, 130)
    await alice.say("redeem mug")

    reply = await alice.say("hmm, no")

    assert reply.text == "Cancelled: nothing was spent."
    assert await probe.balance(alice) == 130
    assert (await alice.say("yes")).text.startswith("Sorry, I didn't understand that.")


async def test_redeem_refusals_say_why(core, chat, probe, mall):
    alice = chat("alice")
    await give(core, probe, alice, 60)

    assert (await alice.say("redeem nothing")).text == (
        "There is no reward called nothing. Send “rewards” to see the mall."
    )
    assert (await alice.say("redeem lounge")).text == (
        "You cannot redeem Lounge pass now: Gold members only."
    )
    assert (await alice.say("redeem mug")).text == (
        "You cannot redeem Coffee mug now: 40 more points."
    )
    assert (await alice.say("redeem luck")).text == "Lucky draw is a lottery: send “draw luck”."


async def test_draw_spends_and_shows_the_prize_and_odds(core, chat, probe, mall):
    alice = chat("alice")
    await give(core, probe, alice, 45)

    listed = await alice.say("抽奖")
    assert listed.text == (
        "Lotteries (you have 45 points):\n"
        "• Lucky draw — 20 points — draw: “draw luck”\n"
        "  Sticker: 75.0%\n"
        "  Big prize: 25.0% · 1 left"
    )
    drawn = await alice.say("/draw luck")

    assert drawn.text.startswith("You drew: ")
    assert drawn.text.endswith(
        "Points left: 25.\nThe odds were:\n  Sticker: 75.0%\n  Big prize: 25.0% · 1 left\n"
        "🏅 New badge: First reward redeemed!"
    )
    assert await probe.balance(alice) == 25


async def test_a_lottery_without_prizes_left_says_so_and_spends_nothing(core, chat, probe, mall):
    alice = chat("alice")
    await give(core, probe, alice, 45)
    async with core.services.db.transaction() as session:
        prize = {"slug": "big", "names": {"en": "Big prize"}, "weight": 1, "stock": 0}
        await rewards.upsert(session, "luck", {}, core.services.clock.now(), [prize])

    listed = await alice.say("rewards")
    refused = await alice.say("draw luck")

    assert "• Lucky draw (luck) — 20 points — all prizes are gone" in listed.text
    assert refused.text == "All prizes of Lucky draw are gone."
    assert await probe.balance(alice) == 45


async def test_draw_with_too_few_points_spends_nothing(core, chat, probe, mall):
    alice = chat("alice")
    await give(core, probe, alice, 5)

    reply = await alice.say("draw luck")

    assert reply.text == "You need 15 more points (you have 5)."
    assert await probe.balance(alice) == 5


async def test_vouchers_expire_in_the_deadlines_hook(core, chat, probe, mall, clock):
    assert ("deadlines", expire_vouchers) in HOOKS
    alice = chat("alice")
    await give(core, probe, alice, 100)
    await alice.say("redeem mug")
    await alice.say("yes")
    clock.advance(days=31)

    assert await expire_vouchers(core.services) == 1
    listed = await alice.say("vouchers")
    assert listed.text.endswith("— Coffee mug — expired, until 2026-04-09")


async def test_linking_accounts_keeps_vouchers_and_badges_once(core, chat, probe, mall, clock):
    alice, alice_tg = chat("alice"), chat("alice-tg", channel="telegram")
    await give(core, probe, alice, 100)
    await give(core, probe, alice_tg, 100)
    for who in (alice, alice_tg):
        await who.say("redeem mug")
        await who.say("yes")

    await alice_tg.say(await link_code(alice))

    listed = await alice.say("vouchers")
    assert listed.text.count("Coffee mug — valid") == 2
    badges_shown = await alice_tg.say("badges")
    assert badges_shown.text.count("First reward redeemed") == 1
    assert await probe.balance(alice) == 0


async def test_a_redelivered_draw_spends_and_draws_once(core, chat, probe, mall):
    alice = chat("alice")
    await give(core, probe, alice, 100)
    # The same app message twice (a webhook redone after a crash before it was answered).
    inbound = replace(alice.inbound("draw luck"), message_id="msg:42")

    first = await core.dispatcher.handle(inbound)
    again = await core.dispatcher.handle(inbound)

    assert first is not None and again is not None
    assert first.text.startswith("You drew: ")
    # The same prize and voucher again; the badge was news only the first time.
    assert again.text.split("\n")[0] == first.text.split("\n")[0]
    assert await probe.balance(alice) == 80
