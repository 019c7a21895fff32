"""A sale's winners claimed together in one PostgreSQL statement (storage/flash_fast.py's group
commit): each claim of a batch gets its own answer, the stock is granted in order and never
passed (also by batches of several processes at once), and a batch whose statement fails
decides each of its claims alone, the Redis unit going back for those that did not win.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Core, build_core
from bot.core.clock import FixedClock
from bot.core.i18n import Translator
from handlers.flashsale_engine import Door, claim_sale
from storage import flash_fast, identities, invites, members
from storage.cache import Keys
from storage.db import Database
from storage.flash_stock import RedisStock, fast_path
from storage.models import Badge, FlashClaim, FlashSale, Member, OutboxPush
from tests.conftest import PG_URL, REDIS_URL, _redis_or_fail, _truncate, make_settings
from tests.handlers.flashsale_support import coffee, join, member_id, sale
from tests.handlers.test_flashsale_redelivery import answer, won


async def _built(postgres_ready: str | Exception, clock: FixedClock, redis: str | None) -> Core:
    if isinstance(postgres_ready, Exception):
        pytest.fail(f"PostgreSQL is not available: {postgres_ready}")
    if redis is not None:
        await _redis_or_fail()
    await _truncate(PG_URL)
    return await build_core(
        make_settings(PG_URL, redis), clock=clock, keys=Keys(prefix=f"mbtest:{uuid.uuid4().hex}")
    )


@pytest.fixture
async def core(postgres_ready: str | Exception, clock: FixedClock) -> AsyncIterator[Core]:
    """PostgreSQL without Redis: every claim reaches the statement."""
    built = await _built(postgres_ready, clock, None)
    yield built
    await built.close()


@pytest.fixture
async def with_redis(postgres_ready: str | Exception, clock: FixedClock) -> AsyncIterator[Core]:
    """PostgreSQL + Redis: the script in front, the statement for the units it grants."""
    built = await _built(postgres_ready, clock, REDIS_URL)
    yield built
    await built.close()


class Gate:
    """claim_many held at its first batch until `release`: the claims arriving meanwhile
    queue for the next one. `batches`: the members of each batch sent."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.batches: list[list[int]] = []
        self.opened = asyncio.Event()
        self.real = flash_fast.claim_many

    async def __call__(self, db, sale_id, community_id, asks, badge=None):  # type: ignore[no-untyped-def]
        self.batches.append([a.member_id for a in asks])
        if len(self.batches) == 1:
            await self.opened.wait()
        return await self.real(db, sale_id, community_id, asks, badge)

    def queued(self) -> int:
        return sum(len(g.queue) for g in flash_fast._GROUPS.get(self.db, {}).values())

    async def until(self, sent: int, queued: int) -> None:
        """Until `sent` batches went out and `queued` claims wait (a bounded poll)."""
        for _ in range(2000):
            if len(self.batches) >= sent and self.queued() >= queued:
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"{len(self.batches)} batches, {self.queued()} queued")


@pytest.fixture
def gate(core: Core, monkeypatch: pytest.MonkeyPatch) -> Gate:
    held = Gate(core.services.db)
    monkeypatch.setattr(flash_fast, "claim_many", held)
    return held


async def sale_row(core: Core, code: str) -> FlashSale:
    async with core.services.db.reader() as session:
        return (await session.execute(select(FlashSale).where(FlashSale.code == code))).scalar_one()


async def claim_rows(core: Core) -> list[FlashClaim]:
    async with core.services.db.reader() as session:
        return list((await session.execute(select(FlashClaim).order_by(FlashClaim.id))).scalars())


async def code_of(core: Core, who: int) -> str:
    [claim] = [c for c in await claim_rows(core) if c.member_id == who]
    return claim.claim_code


async def test_each_claim_of_a_batch_gets_its_own_answer(core, gate):
    community = await coffee(core)
    names = ("ann", "bob", "cat", "dan", "fay", "gus", "hal", "ivy", "zed")
    ids = {who: await join(core, community, "wechat", who) for who in names}
    ids["eve"] = await member_id(core, "wechat", "eve")  # in no community
    posted = await sale(core, stock=6, per_member_limit=1)
    code = posted["code"]
    gate.opened.set()  # the first claims go through at once
    assert (await answer(core, code, "ann", "msg-a1")).startswith("You got")
    hal_first = await answer(core, code, "hal", "msg-h1")
    gate.batches.clear()
    gate.opened.clear()

    blocker = asyncio.create_task(answer(core, code, "zed", "msg-z1"))  # the statement running
    await gate.until(sent=1, queued=0)
    order = [  # arriving meanwhile, in this order
        ("bob", "msg-b1"),  # wins the 4th unit
        ("ann", "msg-a2"),  # holds the limit
        ("hal", "msg-h1"),  # redelivery of the message that won hal's unit
        ("eve", "msg-e1"),  # not a member of the community
        ("fay", "msg-f1"),  # linked into gus while queued: runs again as gus
        ("cat", "msg-c1"),  # wins the 5th
        ("dan", "msg-d1"),  # wins the 6th, the last
        ("ivy", "msg-i1"),  # sold out
    ]
    tasks = []
    for n, (who, message) in enumerate(order, start=1):
        tasks.append(asyncio.create_task(answer(core, code, who, message)))
        await gate.until(sent=1, queued=n)
    async with core.services.db.transaction() as session:
        await invites.lock_for_merge(session, ids["gus"], ids["fay"])
        await members.merge(session, ids["gus"], ids["fay"])
    gate.opened.set()
    zed = await blocker
    got = dict(zip([who for who, _ in order], await asyncio.gather(*tasks), strict=True))

    assert gate.batches[0] == [ids["zed"]]
    assert gate.batches[1] == [ids[who] for who, _ in order]  # all in one statement
    assert zed.startswith(won(await code_of(core, ids["zed"])))
    for who in ("bob", "cat", "dan"):
        assert got[who].startswith(won(await code_of(core, ids[who]))), who
    assert got["ann"] == "You already have 1 of Geisha beans: that is the limit per member."
    assert got["hal"] == hal_first.split("\n🏅")[0]  # the same claim, answered again
    assert got["eve"] == (
        "Geisha beans is for members of Coffee lovers. Join it first: send “join coffee”."
    )
    assert got["fay"] == "Sorry, Geisha beans is sold out."  # as gus, after dan took the last
    assert got["ivy"] == "Sorry, Geisha beans is sold out."
    rows = await claim_rows(core)
    assert sorted(c.member_id for c in rows) == sorted(
        ids[who] for who in ("ann", "hal", "zed", "bob", "cat", "dan")
    )
    assert {c.unit for c in rows} == {1}
    row = await sale_row(core, code)
    assert (row.claimed, row.state, row.sold_out_at) == (6, "ended", core.services.clock.now())


def ask(who: int, code: str, now, key: str | None = None, push=None) -> flash_fast.Ask:  # type: ignore[no-untyped-def]
    return flash_fast.Ask(who, code, now, key, push)


def code_push(sale_id: int, chat: str, code: str, now) -> flash_fast.CodePush:  # type: ignore[no-untyped-def]
    return flash_fast.CodePush(
        channel="telegram",
        chat_id=chat,
        dedupe_key=f"flashsale:{sale_id}:code:{code}",
        payload={"text": f"plain {chat}"},
        payload_badged={"text": f"with badge {chat}"},
        marketing=False,
        quiet=False,
        not_before=now,
    )


async def test_the_batch_statement_answers_every_row_and_writes_only_the_winners(core, clock):
    community = await coffee(core)
    ids = {who: await join(core, community, "telegram", who) for who in ("ann", "bob", "cat")}
    ids |= {who: await join(core, community, "telegram", who) for who in ("dan", "fay", "gus")}
    ids["eve"] = await member_id(core, "telegram", "eve")
    posted = await sale(core, stock=4, per_member_limit=1)
    sale_id = (await sale_row(core, posted["code"])).id
    now = clock.now()
    db = core.services.db
    async with db.transaction() as session:
        for who in ("bob", "dan"):  # bob and dan wrote to the bot privately, cat did not
            await identities.private_chat_opened(session, "telegram", who, now)
        await invites.lock_for_merge(session, ids["gus"], ids["fay"])
        await members.merge(session, ids["gus"], ids["fay"])
    first = await flash_fast.claim_many(
        db, sale_id, community, [ask(ids["ann"], "A" * 10, now, "tg:1")], "first_win"
    )
    assert [(d.status, d.unit, d.claimed, d.badged) for d in first] == [
        (flash_fast.WON, 1, 1, True)
    ]

    answers = await flash_fast.claim_many(
        db,
        sale_id,
        community,
        [
            ask(ids["bob"], "B" * 10, now, "tg:2", code_push(sale_id, "bob", "B" * 10, now)),
            ask(ids["ann"], "C" * 10, now, "tg:3"),  # over the limit
            ask(ids["fay"], "D" * 10, now, "tg:4"),  # linked away
            ask(ids["cat"], "E" * 10, now, None, code_push(sale_id, "cat", "E" * 10, now)),
            ask(ids["eve"], "F" * 10, now, "tg:5"),  # not a member
            ask(ids["dan"], "G" * 10, now, "tg:6", code_push(sale_id, "dan", "G" * 10, now)),
            ask(ids["gus"], "H" * 10, now, "tg:7"),  # past the stock
        ],
        "first_win",
    )
    again = await flash_fast.claim_many(
        db, sale_id, community, [ask(ids["bob"], "J" * 10, now, "tg:2")], "first_win"
    )

    assert [(d.status, d.reason, d.held, d.unit, d.claimed, d.sold_out) for d in answers] == [
        (flash_fast.WON, "", 0, 1, 2, False),
        (flash_fast.REFUSED, "limit", 1, 0, 0, False),
        (flash_fast.MERGED, "", 0, 0, 0, False),
        (flash_fast.WON, "", 0, 1, 3, False),
        (flash_fast.REFUSED, "not_member", 0, 0, 0, False),
        (flash_fast.WON, "", 0, 1, 4, True),
        (flash_fast.REFUSED, "sold_out", 0, 0, 0, False),
    ]
    assert [(d.claim_code, d.pushed, d.badged) for d in answers if d.status == "won"] == [
        ("B" * 10, True, True), ("E" * 10, False, True), ("G" * 10, True, True),
    ]  # fmt: skip
    assert [(d.status, d.claim_code) for d in again] == [(flash_fast.AGAIN, "B" * 10)]
    async with db.reader() as session:
        pushes = select(OutboxPush).where(OutboxPush.kind == "flashsale-code")
        queued = (await session.execute(pushes)).scalars()
        sent = {(p.chat_id, p.member_id, p.payload["text"]) for p in queued}
        badged = set((await session.execute(select(Badge.member_id))).scalars())
    assert sent == {("bob", ids["bob"], "with badge bob"), ("dan", ids["dan"], "with badge dan")}
    assert badged == {ids[who] for who in ("ann", "bob", "cat", "dan")}
    rows = await claim_rows(core)
    assert [(c.member_id, c.claim_code, c.message_key) for c in rows] == [
        (ids["ann"], "A" * 10, "tg:1"),
        (ids["bob"], "B" * 10, "tg:2"),
        (ids["cat"], "E" * 10, None),
        (ids["dan"], "G" * 10, "tg:6"),
    ]
    row = await sale_row(core, posted["code"])
    assert (row.claimed, row.sold_out_at) == (4, now)


async def test_a_members_second_unit_in_a_batch_counts_the_first(core, clock):
    community = await coffee(core)
    ann = await join(core, community, "console", "ann")
    posted = await sale(core, stock=5, per_member_limit=2)
    sale_id = (await sale_row(core, posted["code"])).id
    now = clock.now()
    db = core.services.db
    await flash_fast.claim_many(db, sale_id, community, [ask(ann, "A" * 10, now)])

    second = await flash_fast.claim_many(db, sale_id, community, [ask(ann, "B" * 10, now)])
    third = await flash_fast.claim_many(db, sale_id, community, [ask(ann, "C" * 10, now)])

    assert [(d.status, d.unit, d.held) for d in second + third] == [
        (flash_fast.WON, 2, 1), (flash_fast.REFUSED, 0, 2),
    ]  # fmt: skip
    assert third[0].reason == "limit"


async def test_batches_of_many_processes_at_once_grant_exactly_the_stock_in_order(core, clock):
    """Each task stands for another process: its own statements, no queue shared with the
    others, so the batches meet on the sale's row lock."""
    community = await coffee(core)
    people = [await join(core, community, "console", f"m{i}") for i in range(240)]
    posted = await sale(core, stock=150, per_member_limit=1)
    sale_id = (await sale_row(core, posted["code"])).id
    now = clock.now()
    db = core.services.db

    async def process(p: int) -> list[flash_fast.Fast]:
        answers: list[flash_fast.Fast] = []
        for b in range(4):  # four batches of 6 members each
            crowd = people[p * 24 + b * 6 : p * 24 + b * 6 + 6]
            asks = [ask(who, f"P{p:02d}B{b}M{k}XXX"[:10], now) for k, who in enumerate(crowd)]
            answers += await flash_fast.claim_many(db, sale_id, community, asks)
        return answers

    done = [
        d for answers in await asyncio.gather(*(process(p) for p in range(10))) for d in answers
    ]

    winners = [d for d in done if d.status == flash_fast.WON]
    assert len(winners) == 150
    assert sorted(d.claimed for d in winners) == list(range(1, 151))  # each place once
    assert [d.claimed for d in winners if d.sold_out] == [150]
    assert Counter((d.status, d.reason) for d in done if d.status != flash_fast.WON) == {
        (flash_fast.REFUSED, "sold_out"): 90
    }
    rows = await claim_rows(core)
    assert len(rows) == 150 and len({c.member_id for c in rows}) == 150
    assert (await sale_row(core, posted["code"])).claimed == 150


async def test_a_crowd_through_the_engine_wins_exactly_the_stock_in_few_statements(
    core, monkeypatch
):
    community = await coffee(core)
    people = [f"m{i}" for i in range(60)]
    for who in people:
        await join(core, community, "wechat", who)
    posted = await sale(core, stock=40, per_member_limit=2)
    sizes: list[int] = []
    real = flash_fast.claim_many

    async def counted(db, sale_id, community_id, asks, badge=None):  # type: ignore[no-untyped-def]
        sizes.append(len(asks))
        return await real(db, sale_id, community_id, asks, badge)

    monkeypatch.setattr(flash_fast, "claim_many", counted)
    texts = await asyncio.gather(
        *(answer(core, posted["code"], people[i % 60], f"msg-{i}") for i in range(300))
    )

    rows = await claim_rows(core)
    assert sum(text.startswith("You got") for text in texts) == 40
    assert len(rows) == 40 and max(Counter(c.member_id for c in rows).values()) <= 2
    assert sum(sizes) >= 40 and max(sizes) > 1  # batched: fewer statements than winners
    row = await sale_row(core, posted["code"])
    assert (row.claimed, row.state) == (40, "ended")


async def redis_counts(core: Core, sale_id: int) -> tuple[int, dict[str, int], int]:
    """Redis's claimed count, units per member and marks in flight for the sale."""
    stock = fast_path(core.services.cache)
    assert stock is not None
    state, held, pending = stock._keys(sale_id)
    redis = stock.cache.redis
    claimed = int(await redis.hget(state, "claimed") or -1)
    units = {str(k): int(v) for k, v in (await redis.hgetall(held)).items() if int(v)}
    return claimed, units, int(await redis.zcard(pending))


async def test_a_failed_batch_decides_each_claim_alone_and_gives_units_back(
    with_redis, monkeypatch
):
    core = with_redis
    community = await coffee(core)
    names = ("ann", "bob", "cat", "dan", "zed")
    ids = {who: await join(core, community, "wechat", who) for who in names}
    ids["eve"] = await member_id(core, "wechat", "eve")
    elsewhere = await sale(core, stock=2, title="Kenya beans")
    posted = await sale(core, stock=5, per_member_limit=1)
    sale_id = (await sale_row(core, posted["code"])).id
    await answer(core, elsewhere["code"], "bob", "msg-b1")  # bob's message key is taken
    gate = Gate(core.services.db)
    monkeypatch.setattr(flash_fast, "claim_many", gate)
    failed: list[Sequence[Any]] = []
    real = gate.real

    async def recorded(db, sale_id, community_id, asks, badge=None):  # type: ignore[no-untyped-def]
        try:
            return await real(db, sale_id, community_id, asks, badge)
        except Exception:
            failed.append([a.member_id for a in asks])
            raise

    gate.real = recorded

    blocker = asyncio.create_task(answer(core, posted["code"], "zed", "msg-z1"))
    await gate.until(sent=1, queued=0)
    order = [("ann", "msg-a1"), ("bob", "msg-b1"), ("eve", "msg-e1"), ("cat", "msg-c1")]
    tasks = []
    for n, (who, message) in enumerate(order, start=1):
        tasks.append(asyncio.create_task(answer(core, posted["code"], who, message)))
        await gate.until(sent=1, queued=n)
    gate.opened.set()
    await blocker
    got = dict(zip([who for who, _ in order], await asyncio.gather(*tasks), strict=True))

    # The batch raised on bob's key (a unique violation: nothing of it was written)...
    assert failed == [[ids[who] for who, _ in order]]
    # ...and each claim was decided alone: the others won, bob and eve were refused.
    assert got["ann"].startswith(won(await code_of(core, ids["ann"])))
    assert got["cat"].startswith(won(await code_of(core, ids["cat"])))
    assert got["bob"] == "You already have 1 of Geisha beans: that is the limit per member."
    assert got["eve"].startswith("Geisha beans is for members of Coffee lovers.")
    won_here = [c.member_id for c in await claim_rows(core) if c.sale_id == sale_id]
    assert sorted(won_here) == sorted(ids[who] for who in ("zed", "ann", "cat"))
    # Redis: the units of bob and eve went back, nothing is left in flight.
    claimed, units, in_flight = await redis_counts(core, sale_id)
    assert (claimed, in_flight) == (3, 0)
    assert units == {str(ids[who]): 1 for who in ("zed", "ann", "cat")}
    # The next claims go on in batches: dan wins the 4th unit.
    assert (await answer(core, posted["code"], "dan", "msg-d1")).startswith("You got")


async def test_refusals_in_a_batch_give_their_redis_units_back(with_redis, monkeypatch):
    core = with_redis
    community = await coffee(core)
    ids = {who: await join(core, community, "wechat", who) for who in ("ann", "cat", "zed")}
    for who in ("eve", "uma"):
        ids[who] = await member_id(core, "wechat", who)  # in no community
    posted = await sale(core, stock=5, per_member_limit=1)
    sale_id = (await sale_row(core, posted["code"])).id
    gate = Gate(core.services.db)
    monkeypatch.setattr(flash_fast, "claim_many", gate)

    blocker = asyncio.create_task(answer(core, posted["code"], "zed", "msg-z1"))
    await gate.until(sent=1, queued=0)
    order = [("ann", "m1"), ("eve", "m2"), ("cat", "m3"), ("uma", "m4")]
    tasks = []
    for n, (who, message) in enumerate(order, start=1):
        tasks.append(asyncio.create_task(answer(core, posted["code"], who, message)))
        await gate.until(sent=1, queued=n)
    gate.opened.set()
    await blocker
    got = dict(zip([who for who, _ in order], await asyncio.gather(*tasks), strict=True))

    assert gate.batches[1] == [ids[who] for who, _ in order]
    assert [who for who, text in got.items() if text.startswith("You got")] == ["ann", "cat"]
    assert (
        got["eve"]
        == got["uma"]
        == ("Geisha beans is for members of Coffee lovers. Join it first: send “join coffee”.")
    )
    claimed, units, in_flight = await redis_counts(core, sale_id)
    assert (claimed, in_flight) == (3, 0)
    assert units == {str(ids[who]): 1 for who in ("zed", "ann", "cat")}


async def test_a_batch_waiting_on_the_sales_lock_counts_from_the_claims_before_it(core, clock):
    """Another process's claim holds the sale's row when the batch starts: the batch waits for
    its commit and grants after it (its snapshot's count is stale by then)."""
    community = await coffee(core)
    people = [await join(core, community, "console", f"m{i}") for i in range(4)]
    posted = await sale(core, stock=3, per_member_limit=1)
    sale_id = (await sale_row(core, posted["code"])).id
    now = clock.now()
    db = core.services.db
    async with db.driver() as other:
        holding = other.transaction()
        await holding.start()
        await other.execute("UPDATE flash_sales SET claimed = claimed + 2 WHERE id = $1", sale_id)
        asks = [ask(who, f"CODE{i:06d}", now) for i, who in enumerate(people)]
        batch = asyncio.create_task(flash_fast.claim_many(db, sale_id, community, asks))
        async with db.driver() as watcher:
            for _ in range(2000):  # until the batch waits for the row lock (a bounded poll)
                waiting = await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if waiting:
                    break
                await asyncio.sleep(0.005)
        assert waiting == 1
        await holding.commit()
        answers = await batch

    assert [(d.status, d.reason, d.claimed, d.sold_out) for d in answers] == [
        (flash_fast.WON, "", 3, True),
        (flash_fast.REFUSED, "sold_out", 0, False),
        (flash_fast.REFUSED, "sold_out", 0, False),
        (flash_fast.REFUSED, "sold_out", 0, False),
    ]
    assert len(await claim_rows(core)) == 1
    assert (await sale_row(core, posted["code"])).claimed == 3


async def test_copies_of_a_message_under_way_wait_for_it_and_take_no_unit(with_redis, monkeypatch):
    core = with_redis
    community = await coffee(core)
    ann, bob = [await join(core, community, "wechat", who) for who in ("ann", "bob")]
    posted = await sale(core, stock=5, per_member_limit=3)
    t = Translator("en")
    async with core.services.db.reader() as session:
        me, other = await members.get(session, ann), await members.get(session, bob)
    assert me is not None and other is not None
    await claim_sale(core.services, other, posted["code"], t, Door(message_key="wechat:b1"))
    takes: Counter[int] = Counter()
    real = RedisStock.take

    async def counted(self, db, sale_id, member_id, *args):  # type: ignore[no-untyped-def]
        takes[member_id] += 1
        return await real(self, db, sale_id, member_id, *args)

    monkeypatch.setattr(RedisStock, "take", counted)
    door = Door(message_key="wechat:a1")

    # Ten copies of ann's message at once in this process (the sale is known here already).
    replies = await asyncio.gather(
        *(claim_sale(core.services, me, posted["code"], t, door) for _ in range(10))
    )

    [code] = [c.claim_code for c in await claim_rows(core) if c.member_id == ann]
    assert {reply.text.split("\n🏅")[0] for reply in replies} == {won(code)}
    assert takes == {ann: 1}  # the copies took no unit of their own
    sid = (await sale_row(core, posted["code"])).id
    claimed, units, in_flight = await redis_counts(core, sid)
    assert (claimed, units, in_flight) == (2, {str(ann): 1, str(bob): 1}, 0)


async def test_a_claim_whose_caller_went_away_before_its_statement_is_never_sent(core, gate, clock):
    community = await coffee(core)
    ann, bob, zed = [await join(core, community, "console", who) for who in ("ann", "bob", "zed")]
    posted = await sale(core, stock=5, per_member_limit=1)
    sale_id = (await sale_row(core, posted["code"])).id
    now, db = clock.now(), core.services.db

    def claim(who: int, code: str) -> asyncio.Task[flash_fast.Fast]:
        return asyncio.create_task(
            flash_fast.claim_grouped(db, sale_id, community, ask(who, code, now))
        )

    blocker = claim(zed, "Z" * 10)
    await gate.until(sent=1, queued=0)
    gone, stays = claim(ann, "A" * 10), claim(bob, "B" * 10)
    await gate.until(sent=1, queued=2)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    gate.opened.set()

    assert [(d.status, d.unit) for d in await asyncio.gather(blocker, stays)] == [
        (flash_fast.WON, 1), (flash_fast.WON, 1),
    ]  # fmt: skip
    assert gate.batches == [[zed], [bob]]
    assert sorted(c.member_id for c in await claim_rows(core)) == sorted([zed, bob])


async def cancelled_once_sent(core: Core, gate: Gate) -> tuple[Member, dict[str, Any], int]:
    """ann's claim, its caller cancelled once its batch was sent (a stop's grace ran out),
    then the batch let through `gate` (installed by the caller) until the sale's queue is done:
    (ann, the sale posted, its id)."""
    community = await coffee(core)
    ann = await join(core, community, "wechat", "ann")
    posted = await sale(core, stock=5, per_member_limit=1)
    sale_id = (await sale_row(core, posted["code"])).id
    async with core.services.db.reader() as session:
        me = await members.get(session, ann)
    task = asyncio.create_task(
        claim_sale(
            core.services, me, posted["code"], Translator("en"), Door(message_key="wechat:a1")
        )
    )
    await gate.until(sent=1, queued=0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.opened.set()
    for _ in range(200):
        if flash_fast._GROUPS.get(core.services.db, {}) == {}:
            break
        await asyncio.sleep(0.01)
    return me, posted, sale_id


async def test_a_claim_cancelled_while_its_statement_runs_keeps_its_redis_unit(
    with_redis, monkeypatch
):
    """A caller cancelled once its batch was sent: the statement runs on and commits the unit,
    so Redis keeps it (in flight, reconciled from the rows later); given back, Redis would fall
    below the database."""
    gate = Gate(with_redis.services.db)
    monkeypatch.setattr(flash_fast, "claim_many", gate)
    me, _, sale_id = await cancelled_once_sent(with_redis, gate)
    rows = [c.member_id for c in await claim_rows(with_redis) if c.sale_id == sale_id]
    claimed, units, in_flight = await redis_counts(with_redis, sale_id)
    assert rows == [me.id]
    assert (claimed, units, in_flight) == (1, {str(me.id): 1}, 1)


async def test_a_cancelled_claim_whose_batch_failed_gets_its_redis_unit_back(
    with_redis, monkeypatch
):
    """Cancelled once sent, its batch then failing (nothing committed): the unit goes back
    when the answer comes, so the member's next press is not refused as over the limit."""
    core = with_redis
    real = flash_fast.claim_many
    gate = Gate(core.services.db)

    async def boom(db, sale_id, community_id, asks, badge=None):  # type: ignore[no-untyped-def]
        raise RuntimeError("batch failed")

    gate.real = boom
    monkeypatch.setattr(flash_fast, "claim_many", gate)
    me, posted, sale_id = await cancelled_once_sent(core, gate)
    assert [c for c in await claim_rows(core) if c.sale_id == sale_id] == []
    for _ in range(200):  # the give-back runs once the answer is known
        if (await redis_counts(core, sale_id))[:2] == (0, {}):
            break
        await asyncio.sleep(0.01)
    assert await redis_counts(core, sale_id) == (0, {}, 0)
    monkeypatch.setattr(flash_fast, "claim_many", real)
    core.services.clock.advance(seconds=30)  # the mark ran out long ago
    reply = await claim_sale(
        core.services, me, posted["code"], Translator("en"), Door(message_key="wechat:a2")
    )
    assert "You got" in reply.text
