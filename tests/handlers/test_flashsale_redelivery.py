"""A claim is keyed on the message that made it: a redelivery (WeChat's retry, Telegram's
redelivered update, after a crash between the commit and the answer) answers the same claim,
whatever has happened since (stock left, the limit reached, sold out, another process)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from bot.app import Core, build_core
from bot.core.messages import Inbound
from handlers.privacy import forget
from storage.models import FlashClaim
from tests.conftest import make_settings
from tests.handlers.flashsale_support import coffee, join, sale


def said(code: str, who: str, message_id: str) -> Inbound:
    return Inbound(
        channel="wechat",
        external_id=who,
        chat_id=who,
        text=f"抢 {code}",
        locale_hint="en",
        message_id=message_id,
    )


async def answer(core: Core, code: str, who: str, message_id: str) -> str:
    reply = await core.dispatcher.handle(said(code, who, message_id))
    assert reply is not None
    return reply.text


async def claim_codes(core: Core) -> list[str]:
    async with core.services.db.reader() as session:
        rows = await session.execute(select(FlashClaim.claim_code).order_by(FlashClaim.id))
        return list(rows.scalars())


def won(code: str) -> str:
    return (
        f"You got Geisha beans! Your claim code: {code}\nShow it at the shop to buy it for 99.50."
    )


async def test_a_redelivery_with_stock_and_limit_left_claims_nothing_more(core: Core) -> None:
    community = await coffee(core)
    await join(core, community, "wechat", "ann")
    posted = await sale(core, stock=5, per_member_limit=3)

    first = await answer(core, posted["code"], "ann", "msg-1")
    again = await answer(core, posted["code"], "ann", "msg-1")
    other = await answer(core, posted["code"], "ann", "msg-2")

    one, two = await claim_codes(core)
    assert first.startswith(won(one))
    assert again == won(one)
    assert other.startswith(won(two))


async def test_a_redelivery_at_the_limit_or_sold_out_answers_the_same_claim(
    core: Core, backend: tuple[str, str | None], clock: Any
) -> None:
    community = await coffee(core)
    for who in ("ann", "bob"):
        await join(core, community, "wechat", who)
    posted = await sale(core, stock=1)

    first = await answer(core, posted["code"], "ann", "msg-1")
    [code] = await claim_codes(core)
    assert first.startswith(won(code))
    assert await answer(core, posted["code"], "bob", "msg-2") == "Sorry, Geisha beans is sold out."
    assert await answer(core, posted["code"], "ann", "msg-1") == won(code)
    # A new message of Ann's is a new claim: refused.
    assert await answer(core, posted["code"], "ann", "msg-3") == "Sorry, Geisha beans is sold out."

    # The redelivery reaches another process (or this one restarted).
    other = await build_core(
        make_settings(*backend), clock=clock, keys=core.services.cache.keys, migrate_sqlite=False
    )
    try:
        assert await answer(other, posted["code"], "ann", "msg-1") == won(code)
        assert await answer(other, posted["code"], "bob", "msg-4") == (
            "Sorry, Geisha beans is sold out."
        )
    finally:
        await other.close()
    assert await claim_codes(core) == [code]


async def test_one_message_delivered_ten_times_at_once_claims_once(core: Core) -> None:
    community = await coffee(core)
    people = [f"m{i}" for i in range(8)]
    for who in people:
        await join(core, community, "wechat", who)
    posted = await sale(core, stock=6, per_member_limit=3)

    # Each member's one message arrives ten times at once, with others' in between.
    answers = await asyncio.gather(
        *(answer(core, posted["code"], who, f"msg-{who}") for _ in range(10) for who in people)
    )

    codes = await claim_codes(core)
    assert len(codes) == 6
    by_member = {who: {answers[i * 8 + j] for i in range(10)} for j, who in enumerate(people)}
    winners = [who for who, seen in by_member.items() if any("claim code" in a for a in seen)]
    assert len(winners) == 6
    for who in winners:
        [text] = {a.split("\n🏅")[0] for a in by_member[who]}  # one claim, the same answer
        assert any(c in text for c in codes)


async def test_erasure_drops_the_message_key_and_keeps_the_claim(core: Core) -> None:
    community = await coffee(core)
    ann = await join(core, community, "wechat", "ann")
    posted = await sale(core, stock=2)
    await answer(core, posted["code"], "ann", "msg-1")

    await forget(core.services, ann)

    async with core.services.db.reader() as session:
        [claim] = (await session.execute(select(FlashClaim))).scalars()
    assert (claim.member_id, claim.message_key) == (ann, None)


async def test_a_message_key_won_elsewhere_never_answers_another_members_code(core: Core) -> None:
    community = await coffee(core)
    for who in ("ann", "bob"):
        await join(core, community, "wechat", who)
    first = await sale(core, stock=2)
    second = await sale(core, stock=2, title="Kenya beans")
    await answer(core, first["code"], "ann", "msg-1")
    [ann_code] = await claim_codes(core)

    # The same message key (the app reused an id) claiming for Bob in another sale.
    text = await answer(core, second["code"], "bob", "msg-1")

    # Refused (the key is taken, so no unit of Bob's can be keyed on it), never Ann's code.
    assert text == "You already have 1 of Kenya beans: that is the limit per member."
    assert await claim_codes(core) == [ann_code]
