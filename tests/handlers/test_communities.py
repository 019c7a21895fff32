"""Communities through the console door, and the decisions the Telegram channel asks for."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.app import Core
from bot.channels.console import ConsoleChat
from bot.core.messages import Button
from handlers.groups import GroupJoin, group_member_joined, group_member_left, join_request
from storage import communities, members
from tests.conftest import PRIVACY_LINE
from tests.handlers.conftest import Probe
from tests.handlers.test_link import link_code

GROUP = -1001234567890
COFFEE_QR = "https://example.com/coffee-qr.png"


@pytest.fixture
async def listed(core: Core) -> None:
    """Three communities: open with a WeChat group, Gold-only on Telegram, and archived."""
    now = core.services.clock.now()
    async with core.services.db.transaction() as session:
        await communities.upsert(
            session,
            "coffee",
            {
                "names": {"en": "Coffee lovers", "zh_CN": "咖啡爱好者"},
                "tag": "coffee",
                "wechat_qr": COFFEE_QR,
                "description": "Beans, brews and flash sales.",
            },
            now,
        )
        await communities.upsert(
            session,
            "vip",
            {"names": {"en": "VIP lounge"}, "min_tier": "gold", "telegram_chat_id": GROUP},
            now,
        )
        await communities.upsert(
            session, "old", {"names": {"en": "Old club"}, "active": False}, now
        )


async def joined_slugs(core: Core, who: ConsoleChat) -> set[str]:
    async with core.services.db.reader() as session:
        member = await members.find_by_identity(session, who.channel, who.name)
        assert member is not None
        ids = await communities.joined_ids(session, member.id)
        return {c.slug for c in await communities.listing(session) if c.id in ids}


async def test_no_communities_yet(chat):
    reply = await chat("alice").say("communities")

    assert reply is not None and reply.text == "There are no communities yet." + PRIVACY_LINE


async def test_the_list_shows_each_status_and_join_buttons(chat, listed, probe: Probe):
    alice = chat("alice")

    reply = await alice.say("/communities")

    assert reply is not None
    assert reply.text == (
        "Communities:\n"
        "• Coffee lovers (coffee) — join: “join coffee”\n"
        "  Beans, brews and flash sales.\n"
        "• VIP lounge (vip) — 🔒 for Gold and above" + PRIVACY_LINE
    )
    assert reply.buttons == (Button("Join Coffee lovers", "JOIN:coffee"),)
    await alice.say("join coffee")
    after = await alice.say("社群")
    assert after is not None
    assert (
        after.text.split("\n")[1] == "• Coffee lovers (coffee) — you are in (leave: “leave coffee”)"
    )
    assert after.buttons == ()


async def test_names_follow_the_members_language(chat, listed):
    reply = await chat("li", locale_hint="zh-CN").say("社群")

    assert reply is not None
    assert reply.text.split("\n")[:2] == [
        "社群：",
        "• 咖啡爱好者 (coffee) — 可加入：发送“加入 coffee”",
    ]


async def test_joining_records_the_membership_and_gives_the_wechat_group_qr(
    chat, core: Core, listed
):
    alice = chat("alice")

    first = await alice.say("加入 coffee")
    again = await alice.say("join COFFEE")

    assert first is not None and first.text == (
        f"You joined Coffee lovers!\nScan the QR code to join its WeChat group: {COFFEE_QR}"
        + PRIVACY_LINE
    )
    assert again is not None and again.text.startswith("You are already in Coffee lovers.\n")
    assert await joined_slugs(core, alice) == {"coffee"}


async def test_a_join_button_picked_by_number_joins(chat, core: Core, listed):
    alice = chat("alice")
    await alice.say("communities")

    reply = await alice.say("1")

    assert reply is not None and reply.text.startswith("You joined Coffee lovers!")


async def test_below_the_tier_one_is_told_what_is_needed_and_nothing_is_recorded(
    chat, core: Core, listed, probe: Probe
):
    alice = chat("alice")
    await probe.set_growth(alice, 600, "silver")

    reply = await alice.say("join vip")

    assert reply is not None
    assert reply.text == (
        "VIP lounge is for Gold members and above. You are Silver: 1400 more growth to Gold."
    )
    assert await joined_slugs(core, alice) == set()


async def test_a_qualifying_member_outside_telegram_is_pointed_to_telegram(
    chat, core: Core, listed, probe: Probe
):
    alice = chat("alice")
    await probe.set_growth(alice, 2000, "gold")

    reply = await alice.say("join vip")

    assert reply is not None
    assert reply.text == (
        "You joined VIP lounge!\nIt also has a Telegram group: send /join vip to me on Telegram."
    )
    assert await joined_slugs(core, alice) == {"vip"}


@pytest.mark.parametrize(
    ("said", "answer"),
    [
        ("join", "Which one? Send “communities” to see the list."),
        ("join tea", "There is no community called tea. Send “communities” to see the list."),
        ("join old", "There is no community called old. Send “communities” to see the list."),
        ("leave tea", "There is no community called tea. Send “communities” to see the list."),
        (
            "join ../../etc",
            "There is no community called ../../etc. Send “communities” to see the list.",
        ),
        ("leave coffee", "You are not in Coffee lovers."),
    ],
)
async def test_unknown_or_missing_slugs_get_a_clear_answer(chat, listed, said, answer):
    reply = await chat("alice").say(said)

    assert reply is not None and reply.text == answer + PRIVACY_LINE


async def test_leaving_and_coming_back(chat, core: Core, listed):
    alice = chat("alice")
    await alice.say("join coffee")

    left = await alice.say("退出 coffee")
    back = await alice.say("join coffee")

    assert left is not None
    assert left.text == "You left Coffee lovers. Send “join coffee” to come back any time."
    assert back is not None and back.text.startswith("You joined Coffee lovers!")
    assert await joined_slugs(core, alice) == {"coffee"}


async def test_losing_a_tier_does_not_expel_anyone(chat, core: Core, listed, probe: Probe):
    alice = chat("alice")
    await probe.set_growth(alice, 2000, "gold")
    await alice.say("join vip")

    await probe.set_growth(alice, 0, "bronze")  # the yearly review moved her down
    reply = await alice.say("communities")

    assert reply is not None
    assert "• VIP lounge (vip) — you are in (leave: “leave vip”)" in reply.text
    assert await joined_slugs(core, alice) == {"vip"}


async def test_many_joins_at_once_record_one_membership(chat, core: Core, listed, no_flood_limit):
    alice = chat("alice")

    replies = await asyncio.gather(*(alice.say("join coffee") for _ in range(10)))

    firsts = [r for r in replies if r is not None and r.text.startswith("You joined")]
    assert len(firsts) == 1
    async with core.services.db.reader() as session:
        community = await communities.by_slug(session, "coffee")
        assert community is not None
        assert await communities.member_count(session, community.id) == 1


async def test_linking_accounts_keeps_one_membership_each(chat, core: Core, listed):
    alice, alice_tg = chat("alice"), chat("alice-tg", channel="telegram")
    await alice.say("join coffee")
    await alice_tg.say("join coffee")

    await alice_tg.say(await link_code(alice))

    assert await joined_slugs(core, alice) == {"coffee"}
    async with core.services.db.reader() as session:
        community = await communities.by_slug(session, "coffee")
        assert community is not None
        assert await communities.member_count(session, community.id) == 1


# -- decisions for the Telegram group ------------------------------------------------------


async def test_join_requests_are_approved_by_tier(core: Core, listed, probe: Probe, chat):
    services = core.services
    gold = chat("7001", channel="telegram")
    await probe.set_growth(gold, 2500, "gold")

    approved = await join_request(services, GROUP, "telegram", "7001")
    declined = await join_request(services, GROUP, "telegram", "7002", locale_hint="zh-hans")
    elsewhere = await join_request(services, -100999, "telegram", "7001")

    assert approved is not None and approved.approve and approved.explanation is None
    assert declined is not None and not declined.approve
    assert declined.explanation is not None
    assert declined.explanation.text == (
        "VIP lounge 仅限黄金及以上会员加入。您目前是青铜，再获得 2000 成长值即可升到黄金。"
    )
    assert elsewhere is None


async def test_a_join_with_ones_own_link_is_recorded_and_with_anothers_is_not(
    core: Core, listed, chat
):
    services = core.services
    owner = chat("7001", channel="telegram")
    await owner.say("hi")
    now = services.clock.now()
    async with services.db.transaction() as session:
        vip = await communities.by_slug(session, "vip")
        member = await members.find_by_identity(session, "telegram", "7001")
        assert vip is not None and member is not None
        await communities.save_link(
            session, "https://t.me/+own", vip.id, member.id, now, now + timedelta(hours=24)
        )

    stranger = await group_member_joined(
        services, GROUP, "telegram", "7002", link="https://t.me/+own"
    )
    rightful = await group_member_joined(
        services, GROUP, "telegram", "7001", link="https://t.me/+own"
    )
    not_ours = await group_member_joined(services, -100999, "telegram", "7001")

    assert (stranger, rightful, not_ours) == (
        GroupJoin.WRONG_PERSON,
        GroupJoin.RECORDED,
        GroupJoin.NOT_OURS,
    )
    assert await joined_slugs(core, owner) == {"vip"}
    assert await joined_slugs(core, chat("7002", channel="telegram")) == set()
    async with services.db.reader() as session:
        link = await communities.link_owner(session, "https://t.me/+own")
        assert link is not None and link.revoked is True


async def test_leaving_the_group_is_recorded(core: Core, listed, chat):
    services = core.services
    someone = chat("7001", channel="telegram")
    await group_member_joined(services, GROUP, "telegram", "7001")
    assert await joined_slugs(core, someone) == {"vip"}

    assert await group_member_left(services, GROUP, "telegram", "7001") is True
    assert await group_member_left(services, GROUP, "telegram", "7001") is False
    assert await group_member_left(services, GROUP, "telegram", "9999") is False
    assert await joined_slugs(core, someone) == set()
