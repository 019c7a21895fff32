"""Interest communities on WeChat over real HTTP: the list with the member's status, joining
by tier (answered with the group's QR code), leaving."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from bot.app import Core
from storage import communities
from storage.models import Community, Member
from tests.channels.conftest import Probe, WeChatServer
from tests.conftest import PRIVACY_LINE

OPENID = "oCommunity00000000000000000A"
HIKING_QR = "https://mmbiz.qpic.cn/mmbiz_png/hiking-group-qr/0"
LOUNGE_QR = "https://mmbiz.qpic.cn/mmbiz_png/gold-lounge-qr/0"
HIKING = {
    "names": {"en": "Hiking Club", "zh_CN": "徒步社"},
    "tag": "outdoors",
    "min_tier": "bronze",
    "wechat_qr": HIKING_QR,
    "description": "Weekend walks around town.",
}
LOUNGE = {"names": {"en": "Gold Lounge"}, "min_tier": "gold", "wechat_qr": LOUNGE_QR}
JOINED_HIKING = f"You joined Hiking Club!\nScan the QR code to join its WeChat group: {HIKING_QR}"
LOCKED = "Gold Lounge is for Gold members and above. You are Bronze: 2000 more growth to Gold."


async def add_community(core: Core, slug: str, values: dict[str, Any]) -> Community:
    async with core.services.db.transaction() as session:
        community, _ = await communities.upsert(session, slug, values, core.services.clock.now())
    return community


async def joined(core: Core, probe: Probe, openid: str = OPENID) -> set[int]:
    member = await probe.member(openid)
    assert member is not None
    async with core.services.db.reader() as session:
        return await communities.joined_ids(session, member.id)


async def make_gold(core: Core, probe: Probe, openid: str = OPENID) -> None:
    member = await probe.member(openid)
    assert member is not None
    async with core.services.db.transaction() as session:
        await session.execute(
            update(Member).where(Member.id == member.id).values(tier="gold", growth=2000)
        )


@pytest.fixture
async def hiking(wechat: WeChatServer) -> Community:
    return await add_community(wechat.core, "hiking", HIKING)


@pytest.fixture
async def lounge(wechat: WeChatServer) -> Community:
    return await add_community(wechat.core, "lounge", LOUNGE)


async def test_communities_lists_each_with_the_members_status(
    wechat: WeChatServer, hiking: Community, lounge: Community
) -> None:
    answer = await wechat.text(OPENID, "社群")

    assert answer.content == (
        "Communities:\n"
        "• Hiking Club (hiking) — join: “join hiking”\n"
        "  Weekend walks around town.\n"
        "• Gold Lounge (lounge) — 🔒 for Gold and above"
        f"{PRIVACY_LINE}\n"
        "[1] Join Hiking Club"
    )


async def test_the_communities_menu_key_shows_the_list_in_the_members_language(
    wechat: WeChatServer, hiking: Community
) -> None:
    await wechat.text(OPENID, "语言 zh_CN")

    answer = await wechat.click(OPENID, "COMMUNITIES")

    assert answer.content == (
        "社群：\n• 徒步社 (hiking) — 可加入：发送“加入 hiking”\n  Weekend walks around town.\n"
        "[1] 加入徒步社"
    )


async def test_without_communities_the_list_says_so(wechat: WeChatServer) -> None:
    answer = await wechat.text(OPENID, "社群")

    assert answer.content == "There are no communities yet." + PRIVACY_LINE


async def test_joining_answers_with_the_group_qr_and_records_the_membership(
    wechat: WeChatServer, probe: Probe, hiking: Community
) -> None:
    answer = await wechat.text(OPENID, "加入 hiking")

    assert answer.content == JOINED_HIKING + PRIVACY_LINE
    assert await joined(wechat.core, probe) == {hiking.id}


async def test_the_numbered_option_under_the_list_joins(
    wechat: WeChatServer, probe: Probe, hiking: Community, lounge: Community
) -> None:
    await wechat.text(OPENID, "社群")

    answer = await wechat.text(OPENID, "1")

    assert answer.content == JOINED_HIKING
    assert wechat.inbounds[-1].menu_key == "JOIN:hiking"
    assert await joined(wechat.core, probe) == {hiking.id}


async def test_joining_twice_records_one_membership(
    wechat: WeChatServer, probe: Probe, hiking: Community
) -> None:
    await wechat.text(OPENID, "加入 hiking")

    answer = await wechat.text(OPENID, "加入 HIKING")

    assert answer.content == (
        f"You are already in Hiking Club.\nScan the QR code to join its WeChat group: {HIKING_QR}"
    )
    assert await joined(wechat.core, probe) == {hiking.id}


async def test_a_member_below_the_tier_is_told_what_is_needed_and_not_recorded(
    wechat: WeChatServer, probe: Probe, lounge: Community
) -> None:
    answer = await wechat.text(OPENID, "加入 lounge")

    assert answer.content == LOCKED + PRIVACY_LINE
    assert await joined(wechat.core, probe) == set()


async def test_a_member_of_the_tier_joins_a_tier_community(
    wechat: WeChatServer, probe: Probe, lounge: Community
) -> None:
    await wechat.text(OPENID, "积分")
    await make_gold(wechat.core, probe)

    answer = await wechat.text(OPENID, "加入 lounge")

    assert answer.content == (
        f"You joined Gold Lounge!\nScan the QR code to join its WeChat group: {LOUNGE_QR}"
    )
    assert await joined(wechat.core, probe) == {lounge.id}


async def test_a_community_with_a_telegram_group_points_there(
    wechat: WeChatServer, probe: Probe
) -> None:
    chess = await add_community(
        wechat.core, "chess", {"names": {"en": "Chess Club"}, "telegram_chat_id": -1001234567890}
    )

    answer = await wechat.text(OPENID, "加入 chess")

    assert answer.content == (
        "You joined Chess Club!\nIt also has a Telegram group: send /join chess to me on Telegram."
        + PRIVACY_LINE
    )
    assert await joined(wechat.core, probe) == {chess.id}


async def test_the_list_shows_a_joined_community_with_how_to_leave(
    wechat: WeChatServer, hiking: Community
) -> None:
    await wechat.text(OPENID, "加入 hiking")

    answer = await wechat.text(OPENID, "社群")

    assert answer.content == (
        "Communities:\n"
        "• Hiking Club (hiking) — you are in (leave: “leave hiking”)\n"
        "  Weekend walks around town."
    )


async def test_leaving_records_it_and_says_how_to_come_back(
    wechat: WeChatServer, probe: Probe, hiking: Community
) -> None:
    await wechat.text(OPENID, "加入 hiking")

    answer = await wechat.text(OPENID, "退出 hiking")

    assert answer.content == "You left Hiking Club. Send “join hiking” to come back any time."
    assert await joined(wechat.core, probe) == set()


async def test_leaving_a_community_one_is_not_in(
    wechat: WeChatServer, probe: Probe, hiking: Community
) -> None:
    answer = await wechat.text(OPENID, "退出 hiking")

    assert answer.content == "You are not in Hiking Club." + PRIVACY_LINE


async def test_an_unknown_slug_points_to_the_list(wechat: WeChatServer, hiking: Community) -> None:
    answer = await wechat.text(OPENID, "加入 knitting")

    assert answer.content == (
        "There is no community called knitting. Send “communities” to see the list." + PRIVACY_LINE
    )
