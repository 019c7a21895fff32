"""Around every handler: flood limit, error replies, member lookup and the reply language."""

from __future__ import annotations

import asyncio
import gettext
import logging
import re

import pytest

from bot.core import i18n
from bot.core.errors import DomainError
from bot.core.i18n import N_, Translator
from bot.core.messages import Reply
from storage import members
from tests.conftest import PRIVACY_LINE, privacy_line

SLOW_DOWN = "You're sending messages too fast. Please wait a minute."
APOLOGY = "Sorry, something went wrong on our side. Please try again."


def code_in(reply: Reply | None) -> str:
    """The link code in a /link reply, whatever the language."""
    assert reply is not None
    found = re.search(r"\b\d{6}\b", reply.text)
    assert found is not None, reply.text
    return found.group()


async def test_twenty_messages_a_minute_are_all_answered(chat):
    alice = chat("alice")

    replies = [await alice.say("help") for _ in range(20)]

    assert all(r is not None and "Hi! Here is what I can do:" in r.text for r in replies)


async def test_the_21st_message_in_a_minute_is_told_to_slow_down_once(chat, clock):
    alice = chat("alice")
    for _ in range(20):
        await alice.say("help")
    clock.advance(seconds=59)

    told = await alice.say("points")
    dropped = [await alice.say("points") for _ in range(5)]

    assert told is not None
    assert told.text == SLOW_DOWN
    assert dropped == [None] * 5


async def test_a_new_minute_is_answered_again(chat, clock):
    alice = chat("alice")
    for _ in range(22):
        await alice.say("help")
    clock.advance(minutes=1)

    reply = await alice.say("points")

    assert reply is not None
    assert reply.text.startswith("Your points: 0")


async def test_dropped_messages_do_nothing(chat, probe):
    alice = chat("alice")
    for _ in range(21):
        await alice.say("help")

    dropped = await alice.say("checkin")

    assert dropped is None
    assert await probe.balance(alice) == 0
    assert await probe.checkins(alice) == []


async def test_one_members_flood_does_not_silence_another(chat):
    alice, bob = chat("alice"), chat("bob")
    for _ in range(25):
        await alice.say("help")

    reply = await bob.say("points")

    assert reply is not None
    assert reply.text.startswith("Your points: 0")


async def test_the_flood_limit_counts_the_member_across_apps(chat, probe):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram")
    linked = await alice.say("/link")
    await alice_tg.say(code_in(linked))  # from telegram
    for _ in range(10):  # with /link, 11 from the console
        await alice.say("help")
    for _ in range(9):  # and 9 from Telegram since the merge: 20
        await alice_tg.say("help")

    told = await alice_tg.say("help")  # the 21st message of this member this minute

    assert told is not None
    assert told.text == SLOW_DOWN
    assert len(await probe.identities(alice)) == 2


async def test_unexpected_error_is_answered_with_an_apology_and_no_trace(
    core, chat, monkeypatch, caplog
):
    async def broken(msg, ctx):
        raise RuntimeError("db password is hunter2")

    monkeypatch.setitem(core.dispatcher.actions, "points", broken)

    with caplog.at_level(logging.ERROR, logger="memberbot.handlers"):
        reply = await chat("alice").say("points")

    assert reply is not None
    assert reply.text == APOLOGY + PRIVACY_LINE  # a first answer all the same
    assert "Traceback" not in reply.text
    assert "hunter2" not in reply.text
    assert "handler failed action=points channel=console" in caplog.text


async def test_failure_before_the_handler_is_answered_with_an_apology(chat, monkeypatch):
    async def unavailable(*args, **kwargs):
        raise ConnectionError("database is down")

    monkeypatch.setattr(members, "get_or_create", unavailable)

    reply = await chat("alice").say("checkin")

    assert reply is not None
    assert reply.text == APOLOGY


async def test_a_failing_handler_leaves_the_others_working(core, chat, monkeypatch):
    async def broken(msg, ctx):
        raise ValueError("boom")

    monkeypatch.setitem(core.dispatcher.actions, "tier", broken)
    alice = chat("alice")
    await alice.say("tier")

    reply = await alice.say("checkin")

    assert reply is not None
    assert reply.text.startswith("Checked in! +5 points")


async def test_domain_error_becomes_its_message_with_params_filled(core, chat, monkeypatch):
    async def refuse(msg, ctx):
        raise DomainError(
            N_("Your birthday is already set to {birthday}; it can only be set once."),
            birthday="05-20",
        )

    monkeypatch.setitem(core.dispatcher.actions, "points", refuse)

    reply = await chat("alice").say("points")

    assert reply is not None
    assert reply.text == (
        "Your birthday is already set to 05-20; it can only be set once." + PRIVACY_LINE
    )


async def test_domain_error_is_translated_into_the_members_language(chat, tagged_catalogs):
    reply = await chat("alice", locale_hint="zh_CN").say("/birthday 13-40")

    assert reply is not None
    assert reply.text == (
        "[zh_CN] Please send your birthday as MM-DD, for example: /birthday 05-20"
        + privacy_line("zh_CN")
    )


@pytest.mark.parametrize(
    ("hint", "locale"),
    [
        ("zh-hant", "zh_TW"),
        ("zh-Hant-HK", "zh_TW"),
        ("zh_TW", "zh_TW"),
        ("zh-hans", "zh_CN"),
        ("zh_CN", "zh_CN"),
        ("zh", "zh_CN"),
        ("en-US", "en"),
        (None, "en"),  # no hint: the deployment default (en in tests)
    ],
)
async def test_the_apps_language_hint_picks_the_reply_language(chat, tagged_catalogs, hint, locale):
    reply = await chat("alice", locale_hint=hint).say("points")

    assert reply is not None
    assert reply.text.splitlines()[0] == f"[{locale}] Your points: 0"


async def test_members_language_choice_beats_the_apps_hint(chat, tagged_catalogs):
    alice = chat("alice", locale_hint="zh-hant")
    await alice.say("/lang en")

    reply = await alice.say("points")

    assert reply is not None
    assert reply.text.splitlines()[0] == "[en] Your points: 0"


async def test_language_choice_follows_the_member_into_the_other_app(chat, tagged_catalogs):
    alice, alice_tg = chat("alice"), chat("a-tg", channel="telegram", locale_hint="en")
    await alice.say("/lang zh_TW")
    linked = await alice.say("/link")
    await alice_tg.say(code_in(linked))

    reply = await alice_tg.say("points")

    assert reply is not None
    assert reply.text.splitlines()[0] == "[zh_TW] Your points: 0"


async def test_slow_down_is_in_the_members_language(chat, tagged_catalogs):
    alice = chat("alice", locale_hint="zh-CN")
    for _ in range(20):
        await alice.say("help")

    reply = await alice.say("help")

    assert reply == Reply(f"[zh_CN] {SLOW_DOWN}")


class _BrokenCatalog(gettext.NullTranslations):
    """A translator's typo: the placeholder in the translation does not exist."""

    def gettext(self, message: str) -> str:
        return message.replace("{birthday}", "{生日}")


async def test_domain_error_with_a_broken_translation_still_gets_an_answer(chat, monkeypatch):
    monkeypatch.setattr(i18n, "translations", lambda locale: _BrokenCatalog())
    alice = chat("alice")
    await alice.say("/birthday 05-20")
    await alice.say("yes")

    reply = await alice.say("/birthday 06-21")

    assert reply is not None
    assert reply.text == APOLOGY


async def test_chinese_hint_gets_the_catalogs_chinese_reply(chat):
    reply = await chat("alice", locale_hint="zh_CN").say("签到")

    zh = Translator("zh_CN")
    english = "Checked in! +5 points, 1-day streak. Balance: 5.\nTomorrow: +5 points."
    assert reply is not None
    assert reply.text == (
        zh(
            N_("Checked in! +{points} points, {streak}-day streak. Balance: {balance}."),
            points=5,
            streak=1,
            balance=5,
        )
        + "\n"
        + zh(N_("Tomorrow: +{next} points."), next=5)
        + privacy_line("zh_CN")
    )
    assert reply.text != english


@pytest.fixture
def chinese_by_default(core):
    core.services.settings = core.services.settings.model_copy(update={"default_locale": "zh_CN"})


@pytest.mark.parametrize(("hint", "locale"), [(None, "zh_CN"), ("en", "en"), ("zh-hant", "zh_TW")])
async def test_the_deployment_default_is_used_only_without_a_hint(
    chat, tagged_catalogs, chinese_by_default, hint, locale
):
    reply = await chat("alice", locale_hint=hint).say("points")

    assert reply is not None
    assert reply.text.splitlines()[0] == f"[{locale}] Your points: 0"


async def test_a_database_queue_waited_on_too_long_is_answered_with_an_apology(core, chat):
    """SQLite: the writer held past the pool's timeout fails the request, it does not hang."""
    alice = chat("alice")
    await alice.say("help")
    db = core.services.db
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL's pool has no queue in front of it")
    db.pool_timeout = 0.1
    db._turns.clear()  # the queues are made with the timeout of their time

    async with db.transaction():  # (the dispatcher only: the door would drain pushes after)
        reply = await asyncio.wait_for(core.dispatcher.handle(alice.inbound("checkin")), 5)

    assert reply is not None
    assert reply.text == APOLOGY
