"""Every reason a claim is refused, in the member's language; tier early access."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.admin import flashsales as admin_sales
from bot.core.i18n import Translator
from bot.settings import FlashSaleRules, Rules
from handlers.flashsale_engine import claim_sale
from storage import members
from tests.conftest import privacy_line
from tests.handlers.flashsale_support import coffee, join, join_chat, sale

LOCALES = ("en", "zh_CN", "zh_TW")
EXPECTED = {
    "unknown": (
        "There is no flash sale ZZZZZZ. Please check the code.",
        "没有编号为 ZZZZZZ 的抢购，请检查编号。",
        "沒有編號為 ZZZZZZ 的搶購，請檢查編號。",
    ),
    "not_started": (
        "Geisha beans has not started yet. You can claim from 2026-03-10 12:00.",
        "Geisha beans 还没开始。你从 2026-03-10 12:00 起可以抢。",
        "Geisha beans 還沒開始。你從 2026-03-10 12:00 起可以搶。",
    ),
    "early": (
        "Geisha beans is open early to Gold members and above. "
        "You can claim from 2026-03-10 10:05.",
        "Geisha beans 目前仅对 黄金 及以上会员提前开放。你从 2026-03-10 10:05 起可以抢。",
        "Geisha beans 目前僅對 黃金 以上會員提前開放。你從 2026-03-10 10:05 起可以搶。",
    ),
    "ended": (
        "Sorry, Geisha beans has ended.",
        "抱歉，Geisha beans 已结束。",
        "抱歉，Geisha beans 已結束。",
    ),
    "sold_out": (
        "Sorry, Geisha beans is sold out.",
        "抱歉，Geisha beans 已抢光。",
        "抱歉，Geisha beans 已搶光。",
    ),
    "limit": (
        "You already have 1 of Geisha beans: that is the limit per member.",
        "你已抢到 1 件 Geisha beans，已达每人限购数量。",
        "你已搶到 1 件 Geisha beans，已達每人限購數量。",
    ),
    "not_member": (
        "Geisha beans is for members of Coffee lovers. Join it first: send “join coffee”.",
        "Geisha beans 仅限 咖啡爱好者 的成员。请先加入：发送“加入 coffee”。",
        "Geisha beans 僅限 咖啡愛好者 的成員。請先加入：傳送「加入 coffee」。",
    ),
    "tier": (
        "Geisha beans is for Gold members and above. You are Bronze.",
        "Geisha beans 仅限 黄金 及以上会员。你目前是 青铜。",
        "Geisha beans 僅限 黃金 以上會員。你目前是 青銅。",
    ),
    "too_new": (
        "Flash sales are for members of at least 3 days. You can claim from 2026-03-13 10:00.",
        "入会满 3 天的会员才能参加抢购。你从 2026-03-13 10:00 起可以抢。",
        "入會滿 3 天的會員才能參加搶購。你從 2026-03-13 10:00 起可以搶。",
    ),
}


def expected(reason: str, locale: str) -> str:
    return EXPECTED[reason][LOCALES.index(locale)]


async def refused(core, chat, locale: str, reason: str) -> str:
    """Arrange the reason, have a member in `locale` claim, return the reply's text."""
    community = await coffee(core)
    who = chat("alice", locale_hint=locale)
    if reason != "not_member":
        await join_chat(core, community, who)
    if reason == "too_new":
        core.services.rules = Rules(flash_sales=FlashSaleRules(min_member_days=3))
    start = core.services.clock.now()
    given: dict[str, object] = {}
    if reason == "not_started":
        given["starts_at"] = (start + timedelta(hours=2)).isoformat()
    if reason == "early":
        given["starts_at"] = (start + timedelta(minutes=5)).isoformat()
    if reason == "tier":
        given["min_tier"] = "gold"
    if reason == "sold_out":
        given["stock"] = 1
    posted = await sale(core, **given)
    code = "ZZZZZZ" if reason == "unknown" else posted["code"]
    if reason == "sold_out":
        bob = await join(core, community, "console", "bob")
        async with core.services.db.reader() as session:
            found = await members.get(session, bob)
        assert found is not None
        await claim_sale(core.services, found, code, Translator("en"))
    if reason == "limit":
        await who.say(f"claim {code}")
    if reason == "ended":
        core.services.clock.advance(minutes=31)  # type: ignore[attr-defined]
    reply = await who.say(f"claim {code}")
    assert reply is not None and reply.private
    return reply.text


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("reason", list(EXPECTED))
async def test_each_refusal_says_why_in_the_members_language(core, chat, reason, locale):
    first = privacy_line(locale) if reason == "not_member" else ""  # her first answer
    assert await refused(core, chat, locale, reason) == expected(reason, locale) + first


async def test_a_cancelled_sale_refuses_as_ended(core, chat):
    community = await coffee(core)
    alice = chat("alice")
    await join_chat(core, community, alice)
    posted = await sale(core)
    await admin_sales.cancel_sale(core.services, posted["code"])

    reply = await alice.say(f"抢{posted['code']}")

    assert reply is not None and reply.text == expected("ended", "en")


async def test_gold_members_claim_before_the_start(core, chat):
    community = await coffee(core)
    gold = chat("gold")
    await join_chat(core, community, gold)
    async with core.services.db.transaction() as session:
        await members.set_tier(session, (await members_id(core, "gold")), "gold")
    start = core.services.clock.now() + timedelta(minutes=5)
    posted = await sale(core, starts_at=start.isoformat())

    reply = await gold.say(f"claim {posted['code']}")

    assert reply is not None and reply.text.startswith("You got Geisha beans!")
    assert (await admin_sales.get_sale(core.services, posted["code"]))["claimed"] == 1


async def members_id(core, name: str) -> int:
    async with core.services.db.reader() as session:
        found = await members.find_by_identity(session, "console", name)
    assert found is not None
    return found.id
