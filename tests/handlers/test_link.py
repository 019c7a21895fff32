"""Linking WeChat/Telegram/console accounts with a 6-digit code: one member, nothing doubled."""

from __future__ import annotations

import asyncio
import re
from datetime import date
from types import SimpleNamespace

from bot.channels.console import ConsoleChat
from storage import links
from tests.conftest import PRIVACY_LINE
from tests.handlers.conftest import UNKNOWN_REPLY, Day

CODE_REPLY = re.compile(
    r"Your link code is (\d{6})\. Within 10 minutes, send it to me from your other app "
    r"\(WeChat or Telegram\) to link the two accounts\."
)
WRONG = "That code is wrong or has expired. Send /link in your other app for a new one."


async def link_code(who: ConsoleChat) -> str:
    reply = await who.say("/link")
    assert reply is not None
    found = CODE_REPLY.fullmatch(reply.text.removesuffix(PRIVACY_LINE))  # first answer or not
    assert found is not None, reply.text
    return found.group(1)


def unused_code(used: str) -> str:
    return "000000" if used != "000000" else "000001"


async def test_link_gives_a_six_digit_code_valid_ten_minutes(chat):
    reply = await chat("alice").say("/link")

    assert reply is not None
    assert reply.text.endswith(PRIVACY_LINE)
    assert CODE_REPLY.fullmatch(reply.text.removesuffix(PRIVACY_LINE)) is not None
    assert reply.private is True


async def test_code_sent_from_the_other_app_merges_the_two_members(chat, probe, clock):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    await alice.say("checkin")  # 03-10 on the console: +5
    clock.advance(days=1)
    await alice_tg.say("checkin")  # 03-11 on Telegram: +5
    code = await link_code(alice)

    reply = await alice_tg.say(code)

    assert reply is not None
    assert reply.text == "Linked! Your accounts are now one member: 10 points, tier Bronze."
    assert (await probe.member(alice)).id == (await probe.member(alice_tg)).id
    assert await probe.identities(alice) == {("console", "alice"), ("telegram", "a-tg")}
    assert await probe.balance(alice_tg) == 10
    assert (await probe.member(alice_tg)).growth == 2
    assert await probe.checkins(alice) == [
        Day(date(2026, 3, 10), 1, 5),
        Day(date(2026, 3, 11), 2, 5),
    ]


async def test_link_keyword_with_glued_code_merges_too(chat, probe):
    alice, alice_wx = chat("alice"), chat("a-wx", channel="wechat")
    code = await link_code(alice)

    reply = await alice_wx.say(f"绑定{code}")

    assert reply is not None
    assert reply.text.startswith("Linked!")
    assert await probe.identities(alice_wx) == {("console", "alice"), ("wechat", "a-wx")}


async def test_after_linking_either_app_sees_the_same_points(chat):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    await alice.say("checkin")
    await alice_tg.say(await link_code(alice))

    reply = await alice_tg.say("/points")

    assert reply is not None
    assert reply.text.splitlines()[0] == "Your points: 5"


async def test_same_day_checkins_by_both_halves_count_once(chat, probe):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    await alice.say("checkin")
    await alice_tg.say("checkin")
    code = await link_code(alice)

    reply = await alice_tg.say(f"/link {code}")

    assert reply is not None
    assert reply.text == "Linked! Your accounts are now one member: 5 points, tier Bronze."
    assert await probe.balance(alice) == 5
    assert (await probe.member(alice)).growth == 1
    assert await probe.checkins(alice) == [Day(date(2026, 3, 10), 1, 5)]
    assert [(e.kind, e.amount) for e in await probe.entries(alice)] == [
        ("earn", 5),
        ("earn", 5),
        ("reverse", -5),
    ]


async def test_checking_in_again_from_the_other_half_after_linking_credits_nothing(chat, probe):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    await alice.say("checkin")
    await alice_tg.say(await link_code(alice))

    reply = await alice_tg.say("checkin")

    assert reply is not None
    assert reply.text == (
        "You have already checked in today (1-day streak). Come back tomorrow for 5 points."
    )
    assert await probe.balance(alice) == 5


async def test_streak_continues_across_the_union_of_both_halves_days(chat, probe, clock):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    for _ in range(2):  # console: 03-10, 03-11
        await alice.say("checkin")
        clock.advance(days=1)
    await alice.say("checkin")  # console 03-12: streak 3, +10
    await alice_tg.say("checkin")  # telegram 03-12: streak 1, +5 (the duplicate day)
    await alice_tg.say(await link_code(alice))
    clock.advance(days=1)

    reply = await alice_tg.say("checkin")  # 03-13: day 4 of the merged streak

    assert reply is not None
    assert reply.text == "Checked in! +10 points, 4-day streak. Balance: 30.\nTomorrow: +15 points."
    assert [d.streak for d in await probe.checkins(alice)] == [1, 2, 3, 4]
    assert (await probe.member(alice)).growth == 4


async def test_days_only_the_other_half_checked_in_join_the_streak(chat, probe, clock):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    await alice.say("help")  # alice is the older member and survives the merge
    await alice_tg.say("checkin")  # telegram 03-10
    clock.advance(days=1)
    await alice.say("checkin")  # console 03-11: a 1-day streak on its own
    await alice_tg.say(await link_code(alice))

    reply = await alice.say("checkin")

    assert reply is not None
    assert reply.text == (
        "You have already checked in today (2-day streak). Come back tomorrow for 10 points."
    )
    assert [d.streak for d in await probe.checkins(alice)] == [1, 2]


async def test_linking_keeps_the_higher_tier_and_adds_growth(chat, probe):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    await probe.set_growth(alice, 300, "bronze")
    await probe.set_growth(alice_tg, 250, "bronze")

    reply = await alice_tg.say(await link_code(alice))

    assert reply is not None
    assert reply.text == "Linked! Your accounts are now one member: 0 points, tier Silver."
    merged = await probe.member(alice)
    assert (merged.growth, merged.tier) == (550, "silver")


async def test_code_expires_after_ten_minutes(chat, probe, clock):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    code = await link_code(alice)
    clock.advance(minutes=10, seconds=1)

    reply = await alice_tg.say(f"/link {code}")
    bare = await alice_tg.say(code)  # no code waits any more: just a number

    assert reply is not None
    assert reply.text == WRONG + PRIVACY_LINE
    assert bare is not None and bare.text == UNKNOWN_REPLY
    assert (await probe.member(alice)).id != (await probe.member(alice_tg)).id


async def test_code_still_works_just_before_ten_minutes(chat, probe, clock):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    code = await link_code(alice)
    clock.advance(minutes=9, seconds=59)

    reply = await alice_tg.say(code)

    assert reply is not None
    assert reply.text.startswith("Linked!")


async def test_wrong_code_says_so(chat, probe):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    code = await link_code(alice)

    reply = await alice_tg.say(f"/link {unused_code(code)}")

    assert reply is not None
    assert reply.text == WRONG + PRIVACY_LINE
    assert len(await probe.identities(alice)) == 1


async def test_code_that_is_not_six_digits_is_explained(chat):
    reply = await chat("a-tg", channel="telegram").say("/link 12345")

    assert reply is not None
    assert reply.text == (
        "A link code has 6 digits. Send /link in your other app to get one." + PRIVACY_LINE
    )


async def test_own_code_from_the_same_account_is_refused(chat, probe):
    alice = chat("alice")
    code = await link_code(alice)

    reply = await alice.say(code)

    assert reply is not None
    assert reply.text == "That is your own code: send it from your other app."


async def test_code_sent_from_the_same_app_by_someone_else_is_refused(chat, probe):
    alice, carol = chat("alice"), chat("carol")
    code = await link_code(alice)

    reply = await carol.say(code)

    assert reply is not None
    assert reply.text == "Send this code from your other app, not from this one." + PRIVACY_LINE
    assert await probe.identities(carol) == {("console", "carol")}


async def test_a_refused_code_can_still_be_used_from_the_other_app(chat):
    alice, carol, alice_tg = chat("alice"), chat("carol"), chat("a-tg", channel="telegram")
    code = await link_code(alice)
    await carol.say(code)

    reply = await alice_tg.say(code)

    assert reply is not None
    assert reply.text.startswith("Linked!")


async def test_a_used_code_cannot_be_used_again(chat, probe):
    alice = chat("alice")
    alice_tg, mallory = chat("a-tg", channel="telegram"), chat("m-wx", channel="wechat")
    code = await link_code(alice)
    await alice_tg.say(code)

    reply = await mallory.say(f"link {code}")

    assert reply is not None
    assert reply.text == WRONG + PRIVACY_LINE
    assert await probe.identities(mallory) == {("wechat", "m-wx")}


async def test_a_new_code_replaces_the_previous_one(chat, monkeypatch):
    draws = iter([111111, 222222])
    monkeypatch.setattr(links, "secrets", SimpleNamespace(randbelow=lambda _: next(draws)))
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    assert (await link_code(alice), await link_code(alice)) == ("111111", "222222")

    reply = await alice_tg.say("111111")

    assert reply is not None
    assert reply.text == WRONG + PRIVACY_LINE


async def test_wrong_codes_are_rate_limited_after_five(chat, probe):
    alice, mallory = chat("alice"), chat("m-tg", channel="telegram")
    code = await link_code(alice)
    wrong = unused_code(code)
    answers = [await mallory.say(wrong) for _ in range(5)]

    reply = await mallory.say(code)  # even the right code: guessing is over for now

    assert [a.text if a else None for a in answers] == [WRONG + PRIVACY_LINE, *[WRONG] * 4]
    assert reply is not None
    assert reply.text == "Too many wrong codes. Please try again in 10 minutes."
    assert await probe.identities(mallory) == {("telegram", "m-tg")}


async def test_same_code_redeemed_by_two_members_at_once_links_only_one(chat, probe):
    alice = chat("alice")
    bob, carol = chat("bob", channel="telegram"), chat("carol", channel="wechat")
    code = await link_code(alice)

    # With the command: a bare number is a code only while one waits, and the loser of the
    # race may look after the winner took it (then it is just a number to them).
    replies = await asyncio.gather(bob.say(f"/link {code}"), carol.say(f"/link {code}"))

    texts = sorted(r.text for r in replies if r is not None)
    assert texts == [
        "Linked! Your accounts are now one member: 0 points, tier Bronze.",
        WRONG + PRIVACY_LINE,  # the loser is still a new member
    ]
    assert len(await probe.identities(alice)) == 2


async def test_code_typed_with_full_width_digits_links(chat, monkeypatch):
    monkeypatch.setattr(links, "secrets", SimpleNamespace(randbelow=lambda _: 123456))
    alice, alice_wx = chat("alice"), chat("a-wx", channel="wechat")
    await link_code(alice)

    reply = await alice_wx.say("１２３４５６")  # a Chinese input method in full-width mode

    assert reply is not None
    assert reply.text.startswith("Linked!")


async def test_wrong_codes_sent_at_once_still_get_only_five_tries(
    core, chat, probe, no_flood_limit
):
    alice = chat("alice")
    code = await link_code(alice)
    await chat("m-tg", channel="telegram").say("help")
    doors = [ConsoleChat(core, "m-tg", "en", channel="telegram") for _ in range(20)]

    replies = await asyncio.gather(*(door.say(unused_code(code)) for door in doors))

    texts = [r.text for r in replies if r is not None]
    assert texts.count(WRONG) == 5
    assert texts.count("Too many wrong codes. Please try again in 10 minutes.") == 15


async def test_merge_reversal_is_listed_in_points_history(chat):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    await alice.say("checkin")
    await alice_tg.say("checkin")
    await alice_tg.say(await link_code(alice))

    reply = await alice.say("/points")

    assert reply is not None
    assert reply.text == (
        "Your points: 5\n"
        "Recent:\n"
        "03-10 -5 Linked accounts: duplicate check-in\n"
        "03-10 +5 Check-in\n"
        "03-10 +5 Check-in"
    )
