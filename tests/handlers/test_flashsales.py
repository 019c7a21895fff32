"""Claiming flash sales through the console door: wins, every refusal, the engine under load."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select

from bot.app import Core
from bot.core.errors import DomainError
from bot.core.i18n import Translator
from handlers import flashsale_engine
from handlers.flashsale_engine import claim_sale
from storage import flashsales, invites, members
from storage.errors import MemberMerged
from storage.models import FlashClaim, FlashSale
from tests.handlers.flashsale_support import coffee, join, join_chat, sale


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
        "Show it at the shop to buy it for 99.50.\n"
        "🏅 New badge: First flash-sale win!"
    )
    assert again is not None
    assert again.text == "You already have 1 of Geisha beans: that is the limit per member."
    assert (await sale_row(core, posted["code"])).claimed == 1


async def test_500_claims_by_40_members_give_exactly_the_stock(core):
    community = await coffee(core)
    people = [await join(core, community, "console", f"m{i}") for i in range(40)]
    posted = await sale(core, stock=25, per_member_limit=2)
    t = Translator("en")
    async with core.services.db.reader() as session:
        found = [await members.get(session, p) for p in people]

    async def press(i: int) -> str:
        me = found[i % 40]
        assert me is not None
        try:
            await claim_sale(core.services, me, posted["code"], t)
        except Exception as exc:  # refusals are DomainErrors
            return type(exc).__name__
        return "won"

    results = await asyncio.gather(*(press(i) for i in range(500)))

    claims = await all_claims(core)
    assert Counter(results)["won"] == 25
    assert len(claims) == 25
    assert len({c.claim_code for c in claims}) == 25
    assert max(Counter(c.member_id for c in claims).values()) <= 2
    row = await sale_row(core, posted["code"])
    assert (row.claimed, row.state) == (25, "ended")


async def test_linked_accounts_share_one_limit(core):
    community = await coffee(core)
    on_wechat = await join(core, community, "wechat", "openid-a")
    on_telegram = await join(core, community, "telegram", "777")
    posted = await sale(core, stock=5, per_member_limit=2)
    t = Translator("en")
    async with core.services.db.reader() as session:
        a, b = await members.get(session, on_wechat), await members.get(session, on_telegram)
    assert a is not None and b is not None
    await claim_sale(core.services, a, posted["code"], t)
    await claim_sale(core.services, b, posted["code"], t)

    async with core.services.db.transaction() as session:
        await members.merge(session, on_telegram, on_wechat)
    async with core.services.db.reader() as session:
        survivor = await members.get(session, on_telegram)
    assert survivor is not None

    with pytest.raises(DomainError):
        await claim_sale(core.services, survivor, posted["code"], t)
    claims = await all_claims(core)
    assert sorted((c.member_id, c.unit) for c in claims) == [(on_telegram, 1), (on_telegram, 2)]


async def test_a_claim_by_an_account_merged_away_raises_member_merged(core):
    community = await coffee(core)
    survivor = await join(core, community, "telegram", "777")
    loser = await join(core, community, "wechat", "openid-a")
    posted = await sale(core, stock=2)
    async with core.services.db.transaction() as session:
        await members.merge(session, survivor, loser)
    now = core.services.clock.now()

    with pytest.raises(MemberMerged):
        async with core.services.db.transaction() as session:
            found = await flashsales.by_code(session, posted["code"])
            assert found is not None
            await flashsales.claim(session, found, loser, now, now)
    assert await all_claims(core) == []


async def _no_note(session, services, member_id, sale_id):
    return None


async def test_a_claim_racing_a_merge_runs_again_as_the_survivor(core, chat, backend, monkeypatch):
    if backend[1] is None:
        pytest.skip("SQLite has one writer: a merge cannot commit inside a claim")
    community = await coffee(core)
    alice, bob = chat("alice"), chat("bob")
    survivor = await join_chat(core, community, alice)
    loser = await join_chat(core, community, bob)
    posted = await sale(core, stock=2)
    real = flashsales.claim

    async def merged_meanwhile(session, sale, member_id, *args, **kwargs):
        if member_id == loser:  # Bob's accounts are linked while his claim is under way
            async with core.services.db.transaction() as other:
                await invites.lock_for_merge(other, survivor, loser)
                await members.merge(other, survivor, loser)
        return await real(session, sale, member_id, *args, **kwargs)

    monkeypatch.setattr(flashsales, "claim", merged_meanwhile)
    # The transaction path (a win hook keeps PostgreSQL off the one statement, whose own
    # check only sees merges committed before it starts).
    monkeypatch.setattr(flashsale_engine, "WIN_HOOKS", [_no_note])
    reply = await bob.say(f"claim {posted['code']}")

    [claim] = await all_claims(core)
    assert claim.member_id == survivor
    assert reply is not None and reply.text.startswith(
        f"You got Geisha beans! Your claim code: {claim.claim_code}"
    )
    row = await sale_row(core, posted["code"])
    assert row.claimed == 1
