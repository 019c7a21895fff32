"""Moderators post flash sales in chat with the one-line form; others are refused politely."""

from __future__ import annotations

import pytest

from bot.admin import flashsales as admin_sales
from storage import communities, roles
from tests.conftest import privacy_line
from tests.handlers.flashsale_support import coffee, member_id, moderator

LINE = "/flashsale coffee | Geisha beans | 99.50 | 20 | 1 | {start} | 30"


async def grant(core, role: str, name: str, community: int = 0) -> None:
    mid = await member_id(core, "console", name)
    async with core.services.db.transaction() as session:
        await roles.grant(session, mid, role, community, core.services.clock.now())


@pytest.mark.parametrize("role", ["moderator", "staff", "admin"])
async def test_moderators_staff_and_admins_post_in_one_line(core, chat, role):
    community = await coffee(core)
    if role == "moderator":
        await moderator(core, community, "console", "mod")
    else:
        await grant(core, role, "mod")

    reply = await chat("mod").say(LINE.format(start="12:30"))

    [sale] = await admin_sales.list_sales(core.services)
    assert reply is not None and reply.text == (
        f"Flash sale {sale['code']} posted: Geisha beans, 20 at 99.50, limit 1 per member, "
        f"from 2026-03-10 12:30 to 2026-03-10 13:00. Members claim with “claim {sale['code']}”."
    )
    assert (sale["state"], sale["starts_at"]) == ("scheduled", "2026-03-10T04:30:00+00:00")


async def test_a_moderator_of_another_community_is_refused(core, chat):
    await coffee(core)
    async with core.services.db.transaction() as session:
        tea, _ = await communities.upsert(
            session, "tea", {"names": {"en": "Tea"}}, core.services.clock.now()
        )
    await moderator(core, tea.id, "console", "mod")

    reply = await chat("mod").say(LINE.format(start="now"))

    assert reply is not None
    assert reply.text == "Sorry, only moderators of coffee can post flash sales there."
    assert await admin_sales.list_sales(core.services) == []


async def test_a_member_is_refused_in_chinese_too(core, chat):
    await coffee(core)

    reply = await chat("bob", locale_hint="zh_CN").say("发布抢购 " + LINE.format(start="now")[11:])

    assert reply is not None
    assert reply.text == "抱歉，只有 coffee 的版主才能在那里发布抢购。" + privacy_line("zh_CN")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (
            "/flashsale coffee | Geisha | 0 | 20 | 1 | now | 30",
            "The price must be a positive amount such as 99.50.",
        ),
        (
            "/flashsale coffee | Geisha | 9 | 0 | 1 | now | 30",
            "The stock must be a whole number from 1 to 1000000.",
        ),
        (
            "/flashsale coffee | Geisha | 9 | 5 | 0 | now | 30",
            "The limit per member must be a whole number from 1 to 100.",
        ),
        (
            "/flashsale coffee | Geisha | 9 | 5 | 1 | 09:00 | 30",
            "The start must be now, HH:MM or YYYY-MM-DD HH:MM (local time), "
            "not more than a minute in the past.",
        ),
        (
            "/flashsale coffee | Geisha | 9 | 5 | 1 | now | 10081",
            "The duration must be 1 to 10080 minutes (7 days).",
        ),
        (
            "/flashsale coffee | Geisha | 9 | 5 | 1 | now | 30 | platinum",
            "The tier must be one of: bronze, silver, gold, diamond.",
        ),
        (
            "/flashsale nope | Geisha | 9 | 5 | 1 | now | 30",
            "There is no such community. Send “communities” to see the list.",
        ),
    ],
)
async def test_bad_fields_are_named_in_words(core, chat, line, words):
    community = await coffee(core)
    await moderator(core, community, "console", "mod")

    reply = await chat("mod").say(line)

    assert reply is not None and reply.text == words
    assert await admin_sales.list_sales(core.services) == []


async def test_a_line_with_the_wrong_number_of_parts_shows_the_one_line_form(core, chat):
    reply = await chat("mod").say("flashsale coffee | beans")

    assert reply is not None and reply.text.startswith("Post a flash sale in one line:")


async def test_flashsale_alone_asks_step_by_step_with_numbered_options(core, chat):
    community = await coffee(core)
    await moderator(core, community, "console", "mod")
    mod = chat("mod")

    first = await mod.say("flashsale")
    assert first is not None
    assert first.text == "Which community is the flash sale for? Send its slug."
    assert [b.label for b in first.buttons] == ["Coffee lovers"]
    answers = [
        ("1", "What is on sale? Send the title (at most 64 characters)."),
        ("Geisha beans", "What does a member pay at the shop? For example 99.50"),
        ("0", "The price must be a positive amount such as 99.50."),  # asked again
        ("99.50", "How many units are on sale?"),
        ("２０", "How many units may one member claim?"),  # full-width digits typed on a phone
        ("2", "When does it start? now, HH:MM or YYYY-MM-DD HH:MM"),
        ("1", "How many minutes does it run?"),
        ("60", "Which tier at least may claim?"),
    ]
    for said, asked in answers:
        reply = await mod.say(said)
        assert reply is not None and reply.text == asked, said
    posted = await mod.say("3")  # [1] Everyone [2] Silver [3] Gold [4] Diamond

    [sale] = await admin_sales.list_sales(core.services)
    assert posted is not None and posted.text.startswith(f"Flash sale {sale['code']} posted: ")
    assert (sale["stock"], sale["per_member_limit"], sale["min_tier"], sale["state"]) == (
        20,
        2,
        "gold",
        "live",
    )
    after = await mod.say("blorp")
    assert after is not None and after.text.startswith("Sorry, I didn't understand that.")


async def test_the_steps_refuse_a_member_who_may_not_post(core, chat):
    await coffee(core)
    bob = chat("bob")

    first = await bob.say("/flashsale")
    reply = await bob.say("coffee")

    assert first is not None and first.buttons == ()
    assert reply is not None
    assert reply.text == "Sorry, only moderators of coffee can post flash sales there."
