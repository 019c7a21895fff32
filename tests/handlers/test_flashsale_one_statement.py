"""The winner's SQL step as one PostgreSQL statement (storage/flash_fast.py).

Without Redis every claim reaches the statement, so these crowds test it, not the script in
front of it: never beyond the stock, never beyond the limit, a message claims once; and the
statement writes all or nothing (claim row, count, code push, badge).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import Core, build_core
from bot.core.clock import FixedClock
from bot.core.i18n import Translator
from handlers import flashsale_engine
from handlers.flashsale_engine import claim_sale
from storage import flash_fast, identities, invites, members
from storage.cache import Keys
from storage.errors import MemberMerged
from storage.models import Badge, FlashClaim, FlashSale, OutboxPush
from tests.conftest import PG_URL, _truncate, make_settings
from tests.handlers.flashsale_support import coffee, join, sale
from tests.handlers.test_flashsale_redelivery import answer


@pytest.fixture
async def core(postgres_ready: str | Exception, clock: FixedClock) -> AsyncIterator[Core]:
    """PostgreSQL without Redis: the statement decides every claim."""
    if isinstance(postgres_ready, Exception):
        pytest.fail(f"PostgreSQL is not available: {postgres_ready}")
    await _truncate(PG_URL)
    built = await build_core(
        make_settings(PG_URL, None), clock=clock, keys=Keys(prefix=f"mbtest:{uuid.uuid4().hex}")
    )
    yield built
    await built.close()


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """What the statement answered each claim (alone or in a batch)."""
    seen: Counter[str] = Counter()
    real, real_many = flash_fast.claim, flash_fast.claim_many

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        done = await real(*args, **kwargs)
        seen[done.status] += 1
        return done

    async def counted_many(*args, **kwargs):  # type: ignore[no-untyped-def]
        answers = await real_many(*args, **kwargs)
        seen.update(done.status for done in answers)
        return answers

    monkeypatch.setattr(flash_fast, "claim", counted)
    monkeypatch.setattr(flash_fast, "claim_many", counted_many)
    return seen


async def sale_row(core: Core, code: str) -> FlashSale:
    async with core.services.db.reader() as session:
        return (await session.execute(select(FlashSale).where(FlashSale.code == code))).scalar_one()


async def claims(core: Core) -> list[FlashClaim]:
    async with core.services.db.reader() as session:
        return list((await session.execute(select(FlashClaim))).scalars())


async def test_500_claims_at_once_never_pass_the_stock_nor_the_limit(core, statements):
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

    rows = await claims(core)
    assert Counter(results)["won"] == 25
    assert len(rows) == 25
    assert len({c.claim_code for c in rows}) == 25
    assert max(Counter(c.member_id for c in rows).values()) <= 2
    assert all(1 <= c.unit <= 2 for c in rows)
    row = await sale_row(core, posted["code"])
    assert (row.claimed, row.state) == (25, "ended")
    assert statements[flash_fast.WON] >= 1  # the statement itself won units


async def test_one_message_delivered_ten_times_at_once_claims_once(core, statements):
    community = await coffee(core)
    people = [f"m{i}" for i in range(8)]
    for who in people:
        await join(core, community, "wechat", who)
    posted = await sale(core, stock=6, per_member_limit=3)

    answers = await asyncio.gather(
        *(answer(core, posted["code"], who, f"msg-{who}") for _ in range(10) for who in people)
    )

    rows = await claims(core)
    assert len(rows) == 6
    assert Counter(c.member_id for c in rows).most_common(1)[0][1] == 1  # one per message
    by_member = {who: {answers[i * 8 + j] for i in range(10)} for j, who in enumerate(people)}
    winners = [who for who, seen in by_member.items() if any("claim code" in a for a in seen)]
    assert len(winners) == 6
    for who in winners:
        [text] = {a.split("\n🏅")[0] for a in by_member[who]}  # one claim, the same answer
        assert any(c.claim_code in text for c in rows)
    assert statements[flash_fast.WON] == 6


def ann_code_push(sale_id, now):
    """The push of ann's claim code AAAAAAAAAA, as the engine hands it to the statement."""
    return flash_fast.CodePush(
        channel="telegram",
        chat_id="ann",
        dedupe_key=f"flashsale:{sale_id}:code:AAAAAAAAAA",
        payload={"text": "plain"},
        payload_badged={"text": "with badge"},
        marketing=False,
        quiet=False,
        not_before=now,
    )


async def test_the_statement_writes_claim_count_push_and_badge_together(core, clock):
    community = await coffee(core)
    ann = await join(core, community, "telegram", "ann")
    await members.get_or_create(core.services.db, "telegram", "bob", clock.now())
    posted = await sale(core, stock=2, per_member_limit=1)
    sale_id = (await sale_row(core, posted["code"])).id
    now = clock.now()
    push = ann_code_push(sale_id, now)
    db = core.services.db
    async with db.transaction() as session:  # ann has written to the bot privately
        await identities.private_chat_opened(session, "telegram", "ann", now)

    won = await flash_fast.claim(
        db, sale_id, community, ann, now, "AAAAAAAAAA", "tg:1", push, "first_win"
    )
    repeat = await flash_fast.claim(
        db, sale_id, community, ann, now, "BBBBBBBBBB", "tg:1", push, "first_win"
    )
    limit = await flash_fast.claim(
        db, sale_id, community, ann, now, "CCCCCCCCCC", "tg:2", None, "first_win"
    )

    assert (won.status, won.unit, won.claimed, won.sold_out, won.pushed, won.badged) == (
        flash_fast.WON, 1, 1, False, True, True,
    )  # fmt: skip
    assert (repeat.status, repeat.claim_code) == (flash_fast.AGAIN, "AAAAAAAAAA")
    assert (limit.status, limit.reason, limit.held) == (flash_fast.REFUSED, "limit", 1)
    async with db.reader() as session:
        codes = select(OutboxPush).where(OutboxPush.kind == "flashsale-code")
        [pushed] = (await session.execute(codes)).scalars()
        badges = list((await session.execute(select(Badge.badge))).scalars())
    assert (pushed.kind, pushed.chat_id, pushed.member_id, pushed.payload) == (
        "flashsale-code", "ann", ann, {"text": "with badge"},
    )  # fmt: skip
    assert badges == ["first_win"]
    assert (await sale_row(core, posted["code"])).claimed == 1


async def test_a_unique_key_taken_rolls_the_whole_statement_back(core, clock):
    community = await coffee(core)
    ann = await join(core, community, "console", "ann")
    bob = await join(core, community, "console", "bob")
    posted = await sale(core, stock=5, per_member_limit=1)
    sale_id = (await sale_row(core, posted["code"])).id
    now = clock.now()
    db = core.services.db
    await flash_fast.claim(db, sale_id, community, ann, now, "AAAAAAAAAA", None, None)

    # Bob's claim drew a code that is taken: nothing of it stays, not even the count.
    clash = await flash_fast.claim(db, sale_id, community, bob, now, "AAAAAAAAAA", None, None)

    assert clash.status == flash_fast.CONFLICT
    assert [c.member_id for c in await claims(core)] == [ann]
    assert (await sale_row(core, posted["code"])).claimed == 1


async def test_refusals_say_why(core, clock):
    community = await coffee(core)
    ann = await join(core, community, "console", "ann")
    outsider, _ = await members.get_or_create(core.services.db, "console", "zed", clock.now())
    posted = await sale(core, stock=1, per_member_limit=1)
    sale_id = (await sale_row(core, posted["code"])).id
    now = clock.now()
    db = core.services.db

    stranger = await flash_fast.claim(
        db, sale_id, community, outsider.id, now, "Z" * 10, None, None
    )
    await flash_fast.claim(db, sale_id, community, ann, now, "A" * 10, None, None)
    bob = await join(core, community, "console", "bob")
    sold_out = await flash_fast.claim(db, sale_id, community, bob, now, "B" * 10, None, None)
    late = now + timedelta(hours=1)
    ended = await flash_fast.claim(db, sale_id, community, bob, late, "C" * 10, None, None)
    other = (await sale_row(core, (await sale(core, stock=5))["code"])).id
    closed = await flash_fast.claim(db, other, community, bob, late, "D" * 10, None, None)

    assert (stranger.status, stranger.reason) == (flash_fast.REFUSED, "not_member")
    assert (sold_out.status, sold_out.reason) == (flash_fast.REFUSED, "sold_out")
    assert (ended.status, ended.reason) == (flash_fast.REFUSED, "sold_out")  # sold out first
    assert (closed.status, closed.reason) == (flash_fast.REFUSED, "closed")
    assert flashsale_engine.WIN_BADGES  # the badge goes through the statement, not a hook


async def test_the_group_counter_ends_at_the_count_after_a_crowd(core):
    community = await coffee(core)  # with a Telegram group: the sale is announced there
    people = [await join(core, community, "console", f"m{i}") for i in range(30)]
    posted = await sale(core, stock=50, per_member_limit=1)
    t = Translator("en")
    async with core.services.db.reader() as session:
        found = [await members.get(session, p) for p in people]

    async def press(i: int) -> None:
        me = found[i]
        assert me is not None
        await claim_sale(core.services, me, posted["code"], t)

    # The winners' counter edits are coalesced: the last one reads the count after them all.
    await asyncio.gather(*(press(i) for i in range(30)))
    # An edit asked for by the last winners may still be running: wait for it.
    for counting in list(flashsale_engine._COUNTING.get(core.services.db, {}).values()):
        await counting.task

    row = await sale_row(core, posted["code"])
    async with core.services.db.reader() as session:
        texts = [
            push.payload["text"]
            for push in (await session.execute(select(OutboxPush))).scalars()
            if push.kind == "flashsale-announce"
        ]
    assert row.claimed == 30 and row.announce_id is not None
    assert texts and all("20 of 50 left" in text for text in texts), texts


async def test_no_code_is_queued_for_a_chat_never_opened(core, clock):
    """A group presser who never wrote to the bot privately is sent the deep link instead:
    the statement queues no push Telegram would refuse."""
    community = await coffee(core)
    ann = await join(core, community, "telegram", "ann")
    posted = await sale(core, stock=2, per_member_limit=1)
    sale_id = (await sale_row(core, posted["code"])).id
    now = clock.now()
    push = ann_code_push(sale_id, now)

    won = await flash_fast.claim(
        core.services.db, sale_id, community, ann, now, "AAAAAAAAAA", "tg:1", push
    )

    assert (won.status, won.unit, won.pushed) == (flash_fast.WON, 1, False)


async def test_an_account_linked_away_gets_no_unit_and_runs_again_as_the_survivor(core, clock):
    community = await coffee(core)
    ann = await join(core, community, "telegram", "ann")
    bob = await join(core, community, "telegram", "bob")
    posted = await sale(core, stock=2, per_member_limit=1)
    sale_id = (await sale_row(core, posted["code"])).id
    async with core.services.db.transaction() as session:
        await invites.lock_for_merge(session, ann, bob)
        await members.merge(session, ann, bob)

    with pytest.raises(MemberMerged):
        await flash_fast.claim(
            core.services.db, sale_id, community, bob, clock.now(), "AAAAAAAAAA", "tg:9", None
        )
    assert (await sale_row(core, posted["code"])).claimed == 0
