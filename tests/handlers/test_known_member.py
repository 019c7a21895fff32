"""A check-in trusts the member its process last found for the account (no lookup): whatever
changed meanwhile in another process (the account linked to another member, erased, a new
language, tier or birthday) is what the check-in goes by, never the stale picture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy import func, select

from bot.app import Core, build_core
from bot.channels.console import ConsoleChat
from bot.core.clock import FixedClock
from bot.core.i18n import Translator
from storage import members
from storage.models import Checkin, LedgerEntry, Member
from tests.conftest import PRIVACY_LINE, make_settings
from tests.handlers.conftest import Day, Entry, Probe
from tests.handlers.test_invites import code_of
from tests.handlers.test_link import link_code

CREDITED = "Checked in! +{points} points, {streak}-day streak. Balance: {balance}."


@pytest.fixture
async def elsewhere(
    core: Core, backend: tuple[str, str | None], clock: FixedClock
) -> AsyncIterator[Core]:
    """A second process of the same deployment: its own pool, cache client and the members
    it knows; the same database (and Redis, with PostgreSQL)."""
    database_url, redis_url = backend
    other = await build_core(
        make_settings(database_url, redis_url),
        clock=clock,
        keys=core.services.cache.keys,
        migrate_sqlite=False,
    )
    yield other
    await other.close()


def known(where: Core, channel: str, name: str) -> int | None:
    """The member id `where` would trust for the account without a lookup."""
    found = members._known(where.services.db).get((channel, name))
    return found.id if found is not None else None


async def counts(core: Core, member_id: int) -> tuple[int, int]:
    """(check-ins, ledger entries) recorded for exactly this member id."""
    async with core.services.db.reader() as session:
        days = await session.scalar(select(func.count()).where(Checkin.member_id == member_id))
        lots = await session.scalar(select(func.count()).where(LedgerEntry.member_id == member_id))
    return int(days or 0), int(lots or 0)


async def test_an_account_linked_in_another_process_checks_in_as_the_merged_member(
    core: Core, elsewhere: Core, chat, probe: Probe, clock
):
    alice = chat("alice")
    await alice.say("hi")  # the older member: she survives the link
    there = ConsoleChat(elsewhere, "alice-tg", channel="telegram", locale_hint="en")
    await there.say("checkin")  # 03-10, known over there from now on
    old = known(elsewhere, "telegram", "alice-tg")
    assert old is not None

    await chat("alice-tg", channel="telegram").say(await link_code(alice))  # linked here
    clock.advance(days=1)
    assert known(elsewhere, "telegram", "alice-tg") == old  # stale over there
    reply = await there.say("checkin")

    survivor = (await probe.member(alice)).id
    assert survivor != old
    assert reply is not None
    assert reply.text == CREDITED.format(points=5, streak=2, balance=10) + (
        "\nTomorrow: +10 points."
    )
    assert await probe.entries(alice) == [Entry("earn", 5, "checkin")] * 2
    assert await counts(core, old) == (0, 0)  # the day-1 rows moved with the link
    assert known(elsewhere, "telegram", "alice-tg") == survivor


async def test_an_account_erased_in_another_process_checks_in_as_a_new_member(
    core: Core, elsewhere: Core, chat, probe: Probe
):
    there = ConsoleChat(elsewhere, "bob", locale_hint="en")
    await there.say("checkin")
    old = known(elsewhere, "console", "bob")
    assert old is not None

    bob = chat("bob")
    await bob.say("/forgetme")
    await bob.say("yes")  # erased here: his accounts are gone
    reply = await there.say("checkin")  # the same day, over there

    assert reply is not None
    assert reply.text == (
        CREDITED.format(points=5, streak=1, balance=5) + "\nTomorrow: +5 points." + PRIVACY_LINE
    )
    new = known(elsewhere, "console", "bob")
    assert new is not None and new != old
    assert await counts(core, old) == (1, 1)  # the anonymous member: nothing more
    assert await counts(core, new) == (1, 1)


async def test_a_language_chosen_in_another_process_is_the_answers(elsewhere: Core, chat, clock):
    there = ConsoleChat(elsewhere, "carol", locale_hint="en")
    await there.say("checkin")

    await chat("carol").say("/lang zh_CN")
    clock.advance(days=1)
    reply = await there.say("checkin")

    zh = Translator("zh_CN")
    assert reply is not None
    assert reply.text.splitlines()[0] == zh(CREDITED, points=5, streak=2, balance=10)
    assert known(elsewhere, "console", "carol") is None  # looked up afresh next time
    again = await there.say("checkin")
    assert again is not None
    assert again.text.startswith(
        zh(
            "You have already checked in today ({streak}-day streak). "
            "Come back tomorrow for {next} points.",
            streak=2,
            next=10,
        )
    )


async def test_a_tier_raised_in_another_process_pays_its_multiplier(
    elsewhere: Core, chat, probe: Probe, clock
):
    there = ConsoleChat(elsewhere, "dan", locale_hint="en")
    await there.say("checkin")  # known over there as bronze

    await probe.set_growth(chat("dan"), 500, "silver")  # ×1.2
    clock.advance(days=1)
    reply = await there.say("checkin")

    assert reply is not None
    assert reply.text.splitlines()[0] == CREDITED.format(points=6, streak=2, balance=11)
    assert (await probe.checkins(chat("dan")))[-1:] == [Day(date(2026, 3, 11), 2, 6)]


async def test_a_birthday_saved_in_another_process_doubles_the_day(
    elsewhere: Core, chat, probe: Probe, clock
):
    there = ConsoleChat(elsewhere, "erin", locale_hint="en")
    await there.say("checkin")  # 03-10

    erin = chat("erin")
    await erin.say("/birthday 03-11")
    await erin.say("yes")
    clock.advance(days=1)
    reply = await there.say("checkin")

    assert reply is not None
    assert reply.text.splitlines()[:2] == [
        CREDITED.format(points=10, streak=2, balance=15),
        "Happy birthday! Today's check-in points are doubled.",
    ]
    assert await probe.balance(erin) == 15


async def test_a_known_member_is_trusted_only_by_the_check_in(
    core: Core, elsewhere: Core, chat, probe: Probe, clock
):
    """Every other action looks the member up: /points after a link elsewhere shows the
    merged member's balance, not the old member's."""
    alice = chat("alice")
    await alice.say("checkin")  # 5 points, and older
    clock.advance(days=1)
    there = ConsoleChat(elsewhere, "alice-tg", channel="telegram", locale_hint="en")
    await there.say("checkin")  # 5 points of another day
    await chat("alice-tg", channel="telegram").say(await link_code(alice))

    reply = await there.say("points")

    assert reply is not None
    assert "10" in reply.text.splitlines()[0]
    assert known(elsewhere, "telegram", "alice-tg") == (await probe.member(alice)).id


async def test_a_member_row_is_never_shared_between_databases(core: Core, elsewhere: Core, chat):
    await chat("fay").say("checkin")

    assert known(core, "console", "fay") is not None
    assert known(elsewhere, "console", "fay") is None
    assert isinstance(members._known(core.services.db)[("console", "fay")], Member)


async def test_a_flood_refusal_looks_a_known_member_up(elsewhere: Core, chat, clock):
    """The refusal comes before the check-in's statement: it reads the language afresh.
    (A limit of 0 refuses the first message: the member is still the known one then.)"""
    there = ConsoleChat(elsewhere, "hal", locale_hint="en")
    await there.say("checkin")
    rules = elsewhere.services.rules
    elsewhere.services.rules = rules.model_copy(
        update={"limits": rules.limits.model_copy(update={"flood_per_minute": 0})}
    )
    await chat("hal").say("/lang zh_TW")  # changed here; still known over there as English
    clock.advance(minutes=1)

    refused = await there.say("checkin")

    assert refused is not None
    assert refused.text == Translator("zh_TW")(
        "You're sending messages too fast. Please wait a minute."
    )


async def test_invitee_first_checkin_after_language_change_elsewhere(
    core: Core, elsewhere: Core, chat
):
    """SLOW path (waiting invite) with a known member: the reply must be in the member's
    current language (changed in another process)."""
    there = ConsoleChat(elsewhere, "bob", locale_hint="en")
    await there.say("hi")  # bob known over there, locale None -> en
    assert known(elsewhere, "console", "bob") is not None
    bob = chat("bob")
    await bob.say(f"invite {await code_of(chat('alice'))}")  # invite waits for 1st check-in
    await bob.say("/lang zh_CN")  # changed here

    reply = await there.say("checkin")  # over there: SLOW -> _look_up_again -> _general

    assert reply is not None
    zh = Translator("zh_CN")
    assert reply.text.splitlines()[0] == zh(CREDITED, points=5, streak=1, balance=25)
