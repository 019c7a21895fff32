"""Claiming flash sales through the console door: wins, every refusal, the engine under load."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from bot.app import Core
from bot.core.i18n import Translator
from handlers.flashsale_engine import claim_sale
from storage import members
from storage.models import FlashClaim, FlashSale
from tests.handlers.flashsale_support import coffee, join, join_chat, member_id, sale


async def all_claims(core: Core) -> list[FlashClaim]:
    async with core.services.db.reader() as session:
        return list((await session.execute(select(FlashClaim))).scalars())


async def sale_row(core: Core, code: str) -> FlashSale:
    async with core.services.db.reader() as session:
        return (await session.execute(select(FlashSale).where(FlashSale.code == code))).scalar_one()


async def test_a_member_claims_once_and_gets_a_code(core, chat):
    community = await coffee(core)
    alice = chat("alice")
    await join_chat(core, community, alice)
    posted = await sale(core)

    won = await alice.say(f"claim {posted['code']}")
    again = await alice.say(f"/claim {posted['code'].lower()}")

    claims = await all_claims(core)
    assert len(claims) == 1
    assert won is not None and won.private
    assert won.text == (
        f"You got Geisha beans! Your claim code: {claims[0].claim_code}\n"
        "Show it at the shop to buy it for 99.50."
    )
    assert again is not None
    assert again.text == "You already have 1 of Geisha beans: that is the limit per member."
    assert (await sale_row(core, posted["code"])).claimed == 1
