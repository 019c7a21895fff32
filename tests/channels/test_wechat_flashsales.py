"""Flash sales through the WeChat webhook: 抢 CODE under a crowd with WeChat's retries."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import select

from bot.admin import flashsales as admin_sales
from bot.app import Core
from storage.models import FlashClaim
from tests.channels.conftest import WeChatServer, payload
from tests.handlers.flashsale_support import coffee, join


async def test_forty_followers_retrying_each_message_claim_once_each(
    wechat_core: Core, wechat: WeChatServer
) -> None:
    community = await coffee(wechat_core, telegram_chat_id=None)
    followers = [f"openid-{i}" for i in range(40)]
    for openid in followers:
        await join(wechat_core, community, "wechat", openid)
    sale = await admin_sales.create_sale(
        wechat_core.services,
        {"community": "coffee", "title": "Geisha beans", "price": "9", "stock": 25,
         "duration_minutes": 30},
    )  # fmt: skip
    messages = [payload("text", openid=o, content=f"抢 {sale['code']}") for o in followers]

    # WeChat sends each message up to three times (same MsgId) when the answer is slow.
    answers = await asyncio.gather(*(wechat.post(xml) for xml in messages for _ in range(3)))

    async with wechat_core.services.db.reader() as session:
        claims = list((await session.execute(select(FlashClaim))).scalars())
    assert len(claims) == 25
    assert max(Counter(c.member_id for c in claims).values()) == 1
    by_message = [answers[i : i + 3] for i in range(0, len(answers), 3)]
    assert all(len({a.content for a in three}) == 1 for three in by_message)
    won = [three[0] for three in by_message if "Your claim code" in (three[0].content or "")]
    assert len(won) == 25
    assert {c.claim_code for c in claims} == {
        (a.content or "").split("Your claim code: ")[1].split("\n")[0] for a in won
    }
    state = (await admin_sales.get_sale(wechat_core.services, sale["code"]))["state"]
    assert state == "ended"
