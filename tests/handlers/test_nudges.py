"""`/mute` (退订) and `/unmute` (订阅): marketing pushes off and on, in any language."""

from __future__ import annotations

import pytest

from handlers.nudges import ALREADY_MUTED, ALREADY_UNMUTED, MUTED, UNMUTED
from tests.conftest import PRIVACY_LINE, START


@pytest.mark.parametrize("said", ["/mute", "退订", "退訂", "mute"])
async def test_mute_stops_marketing_pushes(chat, probe, said):
    alice = chat("alice")

    reply = await alice.say(said)

    assert reply.text == MUTED + PRIVACY_LINE
    assert (await probe.member(alice)).muted_at == START


@pytest.mark.parametrize("said", ["/unmute", "订阅", "訂閱", "unmute"])
async def test_unmute_resumes_them(chat, probe, said):
    alice = chat("alice")
    await alice.say("/mute")

    reply = await alice.say(said)

    assert reply.text == UNMUTED
    assert (await probe.member(alice)).muted_at is None


async def test_muting_twice_or_unmuting_when_not_muted_says_so(chat):
    alice = chat("alice")

    assert (await alice.say("/unmute")).text == ALREADY_UNMUTED + PRIVACY_LINE
    await alice.say("/mute")
    assert (await alice.say("/mute")).text == ALREADY_MUTED


async def test_mute_answers_in_the_members_language(chat):
    alice = chat("alice", locale_hint="zh-CN")

    reply = await alice.say("退订")

    assert reply.text.startswith("已退订：")
