"""The privacy line ends a new member's first private answer, whatever they asked, once."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bot.core.first_contact import NOTICE
from bot.core.messages import Inbound
from tests.conftest import HELP_TEXT, PRIVACY_LINE, privacy_line

WELCOME = "Welcome! You are now a member.\n" + HELP_TEXT
CHECKED_IN = "Checked in! +5 points, 1-day streak. Balance: 5.\nTomorrow: +5 points."
NO_POINTS = "Your points: 0\nNo points yet. Check in every day to earn some!"


@pytest.mark.parametrize(
    ("said", "answer"),
    [
        ("签到", CHECKED_IN),
        ("/points", NO_POINTS),
        ("invite 2345", "There is no invite code 2345. Please check it and try again."),
        ("hello", WELCOME),
    ],
)
async def test_the_first_answer_ends_with_the_line_and_the_next_does_not(chat, said, answer):
    ann = chat("ann")

    first = await ann.say(said)
    second = await ann.say("/points")

    assert first is not None and first.text == answer + PRIVACY_LINE
    assert second is not None and NOTICE not in second.text


async def test_the_welcome_has_the_line_once(chat):
    reply = await chat("ann").say("/start")

    assert reply is not None and reply.text == WELCOME + PRIVACY_LINE
    assert reply.text.count(NOTICE) == 1


async def test_the_line_is_in_the_members_language(chat):
    reply = await chat("li", locale_hint="zh-CN").say("/points")

    assert reply is not None
    assert reply.text == "您的积分：0\n暂无积分。每天签到就能赚积分！" + privacy_line("zh_CN")


def _in(group: bool, text: str) -> Inbound:
    """Ann on Telegram, in a group or in her private chat."""
    chat_id = "-1001" if group else "7001"
    return Inbound("telegram", "7001", chat_id, text, is_group=group, locale_hint="en")


async def test_a_first_contact_in_a_group_gets_the_line_at_the_private_start(core):
    handle = core.dispatcher.handle

    in_group = await handle(_in(True, "/help"))
    started = await handle(_in(False, "/start"))
    again = await handle(_in(False, "/start"))

    assert in_group is not None and in_group.text == WELCOME  # nothing about her in the group
    assert started is not None and started.text == HELP_TEXT + PRIVACY_LINE
    assert again is not None and again.text == HELP_TEXT


async def test_a_private_answer_to_a_group_command_waits_for_the_start_too(core):
    handle = core.dispatcher.handle

    points = await handle(_in(True, "/points"))  # her numbers go to her private chat
    checked = await handle(_in(False, "/checkin"))
    started = await handle(_in(False, "/start"))

    assert points is not None and points.private and points.text == NO_POINTS
    assert checked is not None and checked.text == CHECKED_IN
    assert started is not None and started.text == HELP_TEXT + PRIVACY_LINE


async def test_two_starts_at_once_show_an_owed_line_once(core):
    handle = core.dispatcher.handle
    await handle(_in(True, "/help"))
    start = _in(False, "/start")

    replies = await asyncio.gather(*(handle(replace(start, message_id=str(n))) for n in range(4)))

    texts = sorted(r.text for r in replies if r is not None)
    assert texts == [HELP_TEXT] * 3 + [HELP_TEXT + PRIVACY_LINE]
