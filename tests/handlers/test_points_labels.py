"""`/points` names every ledger entry in the member's language (issue 16, item 8)."""

from __future__ import annotations

import pytest

from bot.app import Core
from storage import ledger
from tests.handlers.conftest import Probe

LINES = {
    "en": [
        "03-10 -30 Adjustment by the shop (补偿：订单延误)",
        "03-10 +100 Adjustment by the shop (goodwill)",
        "03-10 +5 Check-in",
        "03-10 +50 Reward for inviting a friend",
    ],
    "zh_CN": [
        "03-10 -30 商家调整（补偿：订单延误）",
        "03-10 +100 商家调整（goodwill）",
        "03-10 +5 签到",
        "03-10 +50 邀请好友奖励",
    ],
    "zh_TW": [
        "03-10 -30 商家調整（补偿：订单延误）",
        "03-10 +100 商家調整（goodwill）",
        "03-10 +5 簽到",
        "03-10 +50 邀請好友獎勵",
    ],
}
WELCOME = {
    "en": "03-10 +20 Welcome gift for joining through an invitation",
    "zh_CN": "03-10 +20 受邀加入的欢迎礼",
    "zh_TW": "03-10 +20 受邀加入的歡迎禮",
}
HINTS = {"en": "en", "zh_CN": "zh-CN", "zh_TW": "zh-TW"}


@pytest.mark.parametrize("locale", ["en", "zh_CN", "zh_TW"])
async def test_ledger_lines_are_translated_and_adjustments_are_the_shops(
    chat, core: Core, probe: Probe, locale: str
):
    alice, bob = chat("alice", locale_hint=HINTS[locale]), chat("bob", locale_hint=HINTS[locale])
    await bob.say(f"invite {(await probe.member(alice)).invite_code}")
    await bob.say("checkin")  # alice's invite reward
    await alice.say("checkin")
    me = await probe.member(alice)
    now = core.services.clock.now()
    async with core.services.db.transaction() as session:
        await ledger.adjust(session, me.id, 100, "goodwill", "t-1", now, expiry_days=365)
        await ledger.adjust(session, me.id, -30, "补偿：订单延误", "t-2", now, expiry_days=365)

    mine = await alice.say("/points")
    theirs = await bob.say("/points")

    assert mine is not None and mine.text.split("\n")[2:] == LINES[locale]
    assert theirs is not None and theirs.text.split("\n")[-1] == WELCOME[locale]
