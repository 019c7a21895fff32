"""Badges given once with a message, /badges earned and next, /top masked with ties."""

from __future__ import annotations

import pytest

from bot.core.clock import local_day
from handlers.badges import mask
from storage import badges
from tests.conftest import PRIVACY_LINE
from tests.handlers.flashsale_support import coffee, join_chat, sale


async def test_a_streak_badge_is_given_once_and_shown(chat, clock):
    alice = chat("alice")
    replies = []
    for _ in range(8):
        replies.append((await alice.say("checkin")).text)
        clock.advance(days=1)

    assert [r.count("New badge") for r in replies] == [0] * 6 + [1, 0]
    shown = await alice.say("勋章")
    assert shown.text == (
        "Your badges:\n"
        "🏅 7-day streak (2026-03-16)\n"
        "Still to earn:\n"
        "⬜ 30-day streak (best streak so far: 8 of 30 days)\n"
        "⬜ 100-day streak (best streak so far: 8 of 100 days)\n"
        "⬜ First friend invited\n"
        "⬜ First reward redeemed\n"
        "⬜ First flash-sale win"
    )


async def test_award_is_once_however_often(core, probe, chat):
    member = await probe.member(chat("alice"))
    now = core.services.clock.now()
    async with core.services.db.transaction() as session:
        assert await badges.award(session, member.id, "streak_7", now)
        assert not await badges.award(session, member.id, "streak_7", now)


async def test_no_badges_yet(chat):
    reply = await chat("alice").say("badges")
    assert reply.text.startswith("No badges yet.\nStill to earn:\n⬜ 7-day streak")


@pytest.mark.parametrize(
    ("name", "masked"),
    [("Alice", "A***e"), ("Bo", "B***o"), ("X", "X***"), (None, "?***"), ("小明同学", "小***学")],
)
def test_names_are_masked(name, masked):
    assert mask(name) == masked


async def test_top_ranks_this_month_with_ties_and_my_rank(chat, clock, no_flood_limit):
    alice, bob, carol, dave = (chat(n) for n in ("alice", "bob", "carol", "dave"))
    for who in (alice, bob, carol):
        await who.say("checkin")
    clock.advance(days=1)
    for who in (alice, bob):
        await who.say("checkin")
    clock.advance(days=1)
    await alice.say("checkin")

    board = await carol.say("排行榜")
    outsider = await dave.say("top")

    assert board.text == (
        "Check-ins this month:\n1. a***e — check-ins: 3\n2. b***b — check-ins: 2\n"
        "3. c***l — check-ins: 1\n"
        "You: #3 (check-ins: 1)."
    )
    assert outsider.text.endswith("You have not checked in this month yet." + PRIVACY_LINE)
    await dave.say("checkin")
    await carol.say("checkin")
    tied = await dave.say("top")
    assert tied.text == (
        "Check-ins this month:\n1. a***e — check-ins: 3\n2. b***b — check-ins: 2\n"
        "2. c***l — check-ins: 2\n"
        "4. d***e — check-ins: 1\nYou: #4 (check-ins: 1)."
    )


async def test_the_first_flash_sale_win_gives_its_badge_once(core, chat, probe):
    community = await coffee(core)
    alice = chat("alice")
    await join_chat(core, community, alice)
    first = await sale(core)
    second = await sale(core, title="Gesha cups")

    won = await alice.say(f"claim {first['code']}")
    again = await alice.say(f"claim {second['code']}")

    assert won.text.endswith("\n🏅 New badge: First flash-sale win!")
    assert again.text.startswith("You got Gesha cups!")
    assert "New badge" not in again.text
    shown = await alice.say("badges")
    day = local_day(core.services.clock.now(), core.services.settings.tz).isoformat()
    assert f"🏅 First flash-sale win ({day})" in shown.text.split("Still to earn:")[0]
    assert "⬜ First flash-sale win" not in shown.text
    member = await probe.member(alice)
    async with core.services.db.reader() as session:
        assert list(await badges.of_member(session, member.id)) == ["first_win"]
