"""A member's own settings: `/lang` (kept) and `/birthday` (validated, settable once)."""

from __future__ import annotations

import asyncio

import pytest

from bot.app import build_core
from bot.channels.console import ConsoleChat
from bot.core.messages import Button
from tests.conftest import PRIVACY_LINE, make_settings, privacy_line

CONFIRM = (
    "Is your birthday {birthday} (month-day)? It can be set only once. "
    "Reply “yes” to save it or “no” to cancel."
)
ASK_FORMAT = "Please send your birthday as MM-DD, for example: /birthday 05-20"


@pytest.mark.parametrize(
    ("said", "locale"),
    [
        ("/lang en", "en"),
        ("/lang zh_CN", "zh_CN"),
        ("/lang zh_TW", "zh_TW"),
        ("/lang zh-tw", "zh_TW"),
        ("语言 简体中文", "zh_CN"),
        ("language English", "en"),
    ],
)
async def test_language_choice_is_kept_on_the_member(chat, probe, said, locale):
    alice = chat("alice")

    await alice.say(said)

    assert (await probe.member(alice)).locale == locale


@pytest.mark.parametrize("locale", ["en", "zh_CN", "zh_TW"])
async def test_language_confirmation_is_in_the_chosen_language(chat, tagged_catalogs, locale):
    reply = await chat("alice", locale_hint="zh-hant").say(f"/lang {locale}")

    assert reply is not None
    assert reply.text == f"[{locale}] Language set to English." + privacy_line(locale)


async def test_chosen_language_is_used_for_later_replies(chat, tagged_catalogs):
    alice = chat("alice", locale_hint="en")
    await alice.say("/lang zh_CN")

    reply = await alice.say("/points")

    assert reply is not None
    assert reply.text.splitlines()[0] == "[zh_CN] Your points: 0"


async def test_language_can_be_changed_again(chat, probe):
    alice = chat("alice")
    await alice.say("/lang zh_TW")

    await alice.say("/lang en")

    assert (await probe.member(alice)).locale == "en"


@pytest.mark.parametrize(
    ("said", "first"),
    [
        ("/lang", ""),
        ("/lang klingon", "klingon is not supported.\n"),
        ("语言 fr", "fr is not supported.\n"),
    ],
)
async def test_unknown_or_missing_language_offers_the_choices(chat, probe, said, first):
    alice = chat("alice")

    reply = await alice.say(said)

    assert reply is not None
    assert reply.text == first + (
        "Choose a language: zh_CN 简体中文, zh_TW 繁體中文, en English. For example: /lang en"
        + PRIVACY_LINE
    )
    assert reply.buttons == (
        Button("简体中文", "LANG:zh_CN"),
        Button("繁體中文", "LANG:zh_TW"),
        Button("English", "LANG:en"),
    )
    assert (await probe.member(alice)).locale is None


async def test_language_button_sets_the_language(chat, probe):
    alice = chat("alice")
    await alice.say("/lang")

    await alice.say("2")  # [2] 繁體中文

    assert (await probe.member(alice)).locale == "zh_TW"


@pytest.mark.parametrize(
    "said",
    ["13-40", "02-30", "00-10", "04-31", "12-32", "1205", "abc", "5", "1999-02-29", "13月1日"],
)
async def test_impossible_birthdays_are_refused(chat, probe, said):
    alice = chat("alice")

    reply = await alice.say(f"/birthday {said}")

    assert reply is not None
    assert reply.text == ASK_FORMAT + PRIVACY_LINE
    assert (await probe.member(alice)).birthday is None


async def test_leap_day_birthday_is_accepted(chat, probe):
    alice = chat("alice")

    asked = await alice.say("/birthday 02-29")
    reply = await alice.say("yes")

    assert asked is not None and asked.text == CONFIRM.format(birthday="02-29") + PRIVACY_LINE
    assert reply is not None
    assert reply.text == "Birthday saved: 02-29. Check in that day for double points!"
    assert (await probe.member(alice)).birthday == "02-29"


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        ("/birthday 5-2", "05-02"),
        ("/birthday 12/31", "12-31"),
        ("生日07.04", "07-04"),
        ("/birthday ０５-２０", "05-20"),
        ("生日 5月20日", "05-20"),
        ("/birthday 5月20号", "05-20"),
        ("/birthday 2000-05-20", "05-20"),
        ("/birthday 1999/5/2", "05-02"),
        ("生日 2000年5月20日", "05-20"),
        ("/birthday 2000-02-29", "02-29"),
    ],
)
async def test_birthday_is_normalised_to_mm_dd(chat, probe, said, stored):
    alice = chat("alice")

    await alice.say(said)
    await alice.say("是")

    assert (await probe.member(alice)).birthday == stored


async def test_birthday_can_only_be_set_once(chat, probe):
    alice = chat("alice")
    await alice.say("/birthday 05-20")
    await alice.say("yes")

    reply = await alice.say("/birthday 03-10")

    assert reply is not None
    assert reply.text == "Your birthday is already set to 05-20; it can only be set once."
    assert (await probe.member(alice)).birthday == "05-20"


async def test_birthday_without_a_date_shows_the_one_set(chat):
    alice = chat("alice")
    await alice.say("/birthday 05-20")
    await alice.say("yes")

    reply = await alice.say("/birthday")

    assert reply is not None
    assert reply.text == "Your birthday is 05-20."


async def test_birthday_without_a_date_asks_for_one_when_unset(chat):
    reply = await chat("alice").say("/birthday")

    assert reply is not None
    assert reply.text == ASK + PRIVACY_LINE


async def test_two_birthdays_sent_at_once_save_one_and_name_it_to_the_other(core, probe):
    first, second = ConsoleChat(core, "alice", "en"), ConsoleChat(core, "alice", "en")
    await first.say("help")

    replies = await asyncio.gather(
        first.say("/birthday yes 05-20"), second.say("/birthday yes 06-21")
    )

    saved = (await probe.member(first)).birthday
    texts = sorted(r.text for r in replies if r is not None)
    assert texts == [
        f"Birthday saved: {saved}. Check in that day for double points!",
        f"Your birthday is already set to {saved}; it can only be set once.",
    ]


@pytest.mark.parametrize("said", ["²-5", "05-2¹"])
async def test_digit_like_symbols_are_refused_not_crashed_on(chat, said):
    reply = await chat("alice").say(f"/birthday {said}")

    assert reply is not None
    assert reply.text == ASK_FORMAT + PRIVACY_LINE


# -- the guided birthday question (a dialog kept in the cache) --------------------------------

ASK = "Tell me your birthday as MM-DD, for example: /birthday 05-20"
SAVED = "Birthday saved: 05-20. Check in that day for double points!"


async def test_birthday_question_is_answered_by_the_next_message(chat, probe):
    alice = chat("alice")

    asked = await alice.say("/birthday")
    answered = await alice.say("05-20")
    confirmed = await alice.say("yes")

    assert asked is not None and asked.text == ASK + PRIVACY_LINE
    assert answered is not None and answered.text == CONFIRM.format(birthday="05-20")
    assert confirmed is not None and confirmed.text == SAVED
    assert (await probe.member(alice)).birthday == "05-20"


async def test_a_wrong_answer_keeps_the_question_open(chat, probe):
    alice = chat("alice")
    await alice.say("生日")

    wrong = await alice.say("13-40")
    await alice.say("5/20")
    right = await alice.say("确认")

    assert wrong is not None and wrong.text == ASK_FORMAT
    assert right is not None and right.text == SAVED


async def test_a_command_in_between_is_not_taken_as_the_answer(chat, probe):
    alice = chat("alice")
    await alice.say("/birthday")

    points = await alice.say("points")
    await alice.say("05-20")
    answered = await alice.say("yes")

    assert points is not None and points.text.startswith("Your points: 0")
    assert answered is not None and answered.text == SAVED


async def test_after_the_answer_plain_text_gets_the_help_again(chat):
    alice = chat("alice")
    await alice.say("/birthday")
    await alice.say("05-20")
    await alice.say("yes")

    reply = await alice.say("05-21")

    assert reply is not None and reply.text.startswith("Sorry, I didn't understand that.")


async def test_the_answer_may_reach_another_process(backend, core, chat, probe, clock):
    database_url, redis_url = backend
    if redis_url is None:
        pytest.skip("the in-process cache is not shared between processes by design")
    other = await build_core(
        make_settings(database_url, redis_url),
        clock=clock,
        keys=core.services.cache.keys,
        migrate_sqlite=False,
    )
    try:
        await chat("alice").say("/birthday")
        await ConsoleChat(other, "alice", locale_hint="en").say("05-20")
        answered = await chat("alice").say("yes")
    finally:
        await other.close()

    assert answered is not None and answered.text == SAVED
    assert (await probe.member(chat("alice"))).birthday == "05-20"


async def test_nothing_is_saved_until_confirmed_and_no_cancels(chat, probe):
    alice = chat("alice")

    asked = await alice.say("/birthday 5月20日")
    cancelled = await alice.say("no")
    late_yes = await alice.say("/birthday yes")

    assert asked is not None and asked.text == CONFIRM.format(birthday="05-20") + PRIVACY_LINE
    assert [(b.label, b.action) for b in asked.buttons] == [
        ("Yes, save it", "BIRTHDAY:yes 05-20"),
        ("No", "BIRTHDAY:no"),
    ]
    assert cancelled is not None
    assert cancelled.text == "Not saved. Send /birthday MM-DD whenever you like."
    assert late_yes is not None and late_yes.text == ASK
    assert (await probe.member(alice)).birthday is None


async def test_the_confirm_button_saves(chat, probe):
    alice = chat("alice")
    await alice.say("/birthday 2000-05-20")

    saved = await alice.say("1")  # the terminal's number for "Yes, save it"

    assert saved is not None and saved.text == SAVED
    assert (await probe.member(alice)).birthday == "05-20"
