"""The Redis fast path of claims: counts rebuilt from the database after a flush, a unit given
back when the SQL write fails, and never more than the stock or the limit either way."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import func, select

from bot.admin import flashsales as admin_sales
from bot.core.i18n import Translator
from handlers import flashsale_engine
from storage import flash_fast, flash_stock, flashsales, members
from storage.cache import LockTimeout
from storage.flash_stock import RedisStock, fast_path
from storage.models import FlashClaim
from tests.handlers.flashsale_support import coffee, join, sale


@pytest.fixture
def stock(core) -> RedisStock:
    found = fast_path(core.services.cache)
    if found is None:
        pytest.skip("the embedded default has no Redis: the SQL step alone decides")
    return found


async def claimed_in_db(core) -> int:
    async with core.services.db.reader() as session:
        return int((await session.execute(select(func.count()).select_from(FlashClaim))).scalar())


async def claimed_in_redis(stock: RedisStock, sale_id: int) -> int:
    return int(await stock.cache.redis.hget(stock._keys(sale_id)[0], "claimed") or -1)


async def sale_id(core, code: str) -> int:
    async with core.services.db.reader() as session:
        found = await flashsales.by_code(session, code)
    assert found is not None
    return found.id


async def people(core, n: int) -> list:
    community = await coffee(core)
    ids = [await join(core, community, "console", f"m{i}") for i in range(n)]
    async with core.services.db.reader() as session:
        return [await members.get(session, i) for i in ids]


async def attempt(core, who, code: str) -> bool:
    try:
        await flashsale_engine.claim_sale(core.services, who, code, Translator("en"))
    except Exception:
        return False
    return True


async def test_a_flush_in_the_middle_of_a_sale_gives_no_unit_twice(core, stock):
    crowd = await people(core, 40)
    posted = await sale(core, stock=60, per_member_limit=2)
    redis = stock.cache.redis

    async def flush_once_claims_started() -> None:
        while await claimed_in_db(core) < 5:
            await asyncio.sleep(0.002)
        await redis.flushdb()

    # Everyone's first unit, with Redis flushed while they are being decided...
    first = await asyncio.gather(
        flush_once_claims_started(), *(attempt(core, who, posted["code"]) for who in crowd)
    )
    # ...then a crowd for the 20 left, on counts rebuilt from the database.
    await redis.flushdb()
    second = await asyncio.gather(
        *(attempt(core, crowd[i % 40], posted["code"]) for i in range(200))
    )

    async with core.services.db.reader() as session:
        claims = list((await session.execute(select(FlashClaim))).scalars())
    assert first[1:] == [True] * 40
    assert sum(second) == 20
    assert len(claims) == 60
    assert max(Counter(c.member_id for c in claims).values()) == 2
    assert await claimed_in_redis(stock, await sale_id(core, posted["code"])) == 60


async def test_counts_are_rebuilt_from_the_database_before_deciding(core, stock):
    crowd = await people(core, 3)
    posted = await sale(core, stock=3)
    assert await attempt(core, crowd[0], posted["code"])
    assert await attempt(core, crowd[1], posted["code"])
    await stock.cache.redis.flushdb()

    assert not await attempt(core, crowd[0], posted["code"])  # the limit survives the flush
    assert await attempt(core, crowd[2], posted["code"])
    assert await claimed_in_redis(stock, await sale_id(core, posted["code"])) == 3


async def test_a_failed_sql_write_gives_the_unit_back(core, stock, monkeypatch):
    crowd = await people(core, 2)
    posted = await sale(core, stock=1)

    async def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    # The SQL step: the one statement on PostgreSQL (the batch's, then the claim's alone), the
    # transaction's claim on SQLite.
    monkeypatch.setattr(flashsales, "claim", broken)
    monkeypatch.setattr(flash_fast, "claim_many", broken)
    monkeypatch.setattr(flash_fast, "claim", broken)
    assert not await attempt(core, crowd[0], posted["code"])
    assert await claimed_in_redis(stock, await sale_id(core, posted["code"])) == 0
    monkeypatch.undo()

    assert await attempt(core, crowd[1], posted["code"])
    assert await claimed_in_db(core) == 1


async def test_a_rebuild_stuck_behind_a_crowd_lets_the_sql_step_decide(core, stock, monkeypatch):
    crowd = await people(core, 3)
    posted = await sale(core, stock=2)
    await stock.cache.redis.flushdb()

    async def stuck(self, db, sale_id):
        raise LockTimeout("fs-rebuild")

    monkeypatch.setattr(RedisStock, "rebuild", stuck)
    results = [await attempt(core, who, posted["code"]) for who in crowd]

    assert results == [True, True, False]
    assert await claimed_in_db(core) == 2


async def test_a_unit_taken_by_a_claim_that_died_is_sold_again(core, stock, clock):
    crowd = await people(core, 4)
    posted = await sale(core, stock=2)
    sid = await sale_id(core, posted["code"])
    assert await attempt(core, crowd[0], posted["code"])
    now = core.services.clock.now()
    # crowd[1]'s process took a unit, then died before its SQL step: no row, no give-back.
    assert await stock.take(core.services.db, sid, crowd[1].id, now, now, "DEAD000001") == "ok"

    assert not await attempt(core, crowd[2], posted["code"])  # maybe still in flight: waits
    clock.advance(seconds=6)  # the dead claim's mark runs out
    assert await attempt(core, crowd[2], posted["code"])  # reconciled: the unit is sold again
    assert not await attempt(core, crowd[3], posted["code"])

    assert await claimed_in_db(core) == 2
    assert await claimed_in_redis(stock, sid) == 2
    assert await stock.cache.redis.zcard(stock._keys(sid)[2]) == 0


async def test_dead_claims_and_lost_confirms_heal_under_a_crowd_without_a_unit_twice(
    core, stock, clock, monkeypatch
):
    crowd = await people(core, 40)
    posted = await sale(core, stock=10)
    sid = await sale_id(core, posted["code"])
    now = core.services.clock.now()
    for i, who in enumerate(crowd[:4]):  # four processes died after their take
        assert await stock.take(core.services.db, sid, who.id, now, now, f"DEAD00000{i}") == "ok"

    async def lost(self, sale_id, member_id, claim_code):
        return None  # the commit happened, the confirm never reached Redis

    monkeypatch.setattr(RedisStock, "confirm", lost)
    first = await asyncio.gather(*(attempt(core, who, posted["code"]) for who in crowd[4:20]))
    assert sum(first) == 6
    monkeypatch.undo()

    clock.advance(seconds=6)
    second = await asyncio.gather(
        *(attempt(core, crowd[i % 40], posted["code"]) for i in range(120))
    )

    async with core.services.db.reader() as session:
        claims = list((await session.execute(select(FlashClaim))).scalars())
    assert sum(second) == 4
    assert len(claims) == 10
    assert max(Counter(c.member_id for c in claims).values()) == 1
    assert await claimed_in_redis(stock, sid) == 10


async def commit_claim(core, who, code: str, claim_code: str) -> None:
    """A claim's SQL step committing (the engine's, run by hand at a chosen moment)."""
    now = core.services.clock.now()
    async with core.services.db.transaction() as session:
        found = await flashsales.by_code(session, code)
        assert found is not None
        await flashsales.claim(session, found, who.id, now, now, claim_code)


async def test_a_sql_refusal_makes_redis_final_instead_of_giving_the_unit_back(
    core, stock, clock, monkeypatch
):
    slow, b, c, *later = await people(core, 8)
    posted = await sale(core, stock=2)
    sid = await sale_id(core, posted["code"])
    now = core.services.clock.now()
    # slow's claim took a unit in Redis, then waited for a database connection for long.
    assert await stock.take(core.services.db, sid, slow.id, now, now, "SLOW000001") == "ok"
    assert await attempt(core, b, posted["code"])
    clock.advance(seconds=6)  # slow's mark runs out while its claim still waits
    real_take = RedisStock.take

    async def slow_commits_after(self, *args, **kwargs):
        verdict = await real_take(self, *args, **kwargs)
        await commit_claim(core, slow, posted["code"], "SLOW000001")
        return verdict

    monkeypatch.setattr(RedisStock, "take", slow_commits_after)
    assert not await attempt(core, c, posted["code"])  # c got the freed unit in Redis, then SQL
    monkeypatch.undo()

    assert await claimed_in_db(core) == 2
    assert await claimed_in_redis(stock, sid) == 2
    now = core.services.clock.now()
    takes = [await stock.take(core.services.db, sid, w.id, now, now, "LATER00001") for w in later]
    assert takes == ["sold_out"] * 5


async def test_the_last_unit_won_makes_redis_final(core, stock):
    b, c, *later = await people(core, 5)
    posted = await sale(core, stock=2)
    sid = await sale_id(core, posted["code"])
    assert await attempt(core, b, posted["code"])
    # Redis missed b's unit (a count one short, as a lost race could leave it)...
    await stock.cache.redis.hset(stock._keys(sid)[0], "claimed", 0)
    assert await attempt(core, c, posted["code"])  # ...and c's unit sold the last one

    assert await claimed_in_db(core) == 2
    assert await claimed_in_redis(stock, sid) == 2
    now = core.services.clock.now()
    takes = [await stock.take(core.services.db, sid, w.id, now, now, "LATER00001") for w in later]
    assert takes == ["sold_out"] * 3


async def test_a_claim_committing_during_a_reconcile_is_still_counted(
    core, stock, clock, monkeypatch
):
    dead, b, a, x, c = await people(core, 5)
    posted = await sale(core, stock=4)
    sid = await sale_id(core, posted["code"])
    db = core.services.db
    now = core.services.clock.now()
    assert await stock.take(db, sid, dead.id, now, now, "DEAD000001") == "ok"
    clock.advance(seconds=6)  # dead's mark runs out
    assert await attempt(core, b, posted["code"])
    now = core.services.clock.now()
    assert await stock.take(db, sid, a.id, now, now, "INFLIGHT01") == "ok"
    assert await stock.take(db, sid, x.id, now, now, "INFLIGHT02") == "ok"
    redis = stock.cache.redis
    real_zrange = redis.zrange

    async def a_commits_meanwhile(*args, **kwargs):
        await commit_claim(core, a, posted["code"], "INFLIGHT01")
        return await real_zrange(*args, **kwargs)

    monkeypatch.setattr(redis, "zrange", a_commits_meanwhile)
    assert await attempt(core, c, posted["code"])  # sold out in Redis but for dead's unit
    monkeypatch.undo()

    # The database: b, a, c; in flight: x. Nothing left.
    assert await claimed_in_db(core) == 3
    assert await claimed_in_redis(stock, sid) == 4


async def test_a_cancel_racing_a_rebuild_that_read_the_sale_open_still_closes_it(
    core, stock, monkeypatch
):
    [who] = await people(core, 1)
    posted = await sale(core, stock=2)
    sid = await sale_id(core, posted["code"])
    await stock.cache.redis.flushdb()
    real_counts = flash_stock.counts
    cancelling: list[asyncio.Task] = []

    async def cancel_meanwhile(session, sale_id):
        found = await real_counts(session, sale_id)  # the rebuild read the sale open...
        cancelling.append(
            asyncio.create_task(admin_sales.cancel_sale(core.services, posted["code"]))
        )
        while True:  # ...and the cancel commits (and reaches Redis) before it loads the counts
            async with core.services.db.reader() as other:
                row = await flashsales.by_code(other, posted["code"])
            if row is not None and row.state == flashsales.CANCELLED:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        return found

    monkeypatch.setattr(flash_stock, "counts", cancel_meanwhile)
    await stock.rebuild(core.services.db, sid)
    await cancelling[0]
    monkeypatch.undo()

    now = core.services.clock.now()
    assert await stock.take(core.services.db, sid, who.id, now, now, "LATE000001") == "closed"
