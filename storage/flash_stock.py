"""The Redis fast path of flash-sale claims: one Lua script decides window, per-member count
and stock without touching the database for the many who lose.

Redis is never the record: a unit it grants is only won once the SQL claim row and the
conditional UPDATE commit (storage/flashsales.py), and a failed SQL write gives the unit back
(unless the database said sold out or closed, final there: then Redis is made final too).
When the sale's keys are missing (a restart, a flush, an eviction) the script answers
"rebuild", and the counts are rebuilt from the database before anything more is decided.
Anything Redis gets wrong after a flush (a claim in flight while it was rebuilt) only lets
more requests through to the SQL step, which still refuses past the stock or the limit.

Every unit granted is held under a pending mark (member:claim code, a deadline PENDING_MS
ahead) until its SQL step ends: confirmed (the mark goes) or given back (the mark and the unit
go, once: a unit whose mark is gone was already accounted for by a rebuild). So Redis can tell
"sold out" from "sold out unless a claim in flight fails": the latter answers "busy" and the
claim asks again shortly. A process that dies between the take and the commit leaves a mark
that runs out; a sale that looks sold out with such marks is reconciled from the database
(see `reconcile`), so the unit is sold again, never twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from weakref import WeakKeyDictionary

from redis.asyncio import Redis
from sqlalchemy import select

from storage.cache import Cache, LockTimeout, RedisCache
from storage.db import Database
from storage.flash_claims import counts
from storage.flashsales import OPEN
from storage.models import FlashClaim, FlashSale

log = logging.getLogger("memberbot.flashsales")

OK, REBUILD, RECONCILE, BUSY = "ok", "rebuild", "reconcile", "busy"
SOLD_OUT = "sold_out"
WON_LAST = "won_last"  # give_back's `over` for the unit that sold the sale out
SQL_ONLY = "sql-only"  # no unit held in Redis: the SQL step decides (and nothing to give back)
KEEP_AFTER_END_MS = 3_600_000  # the counts outlive the sale by an hour, then expire
PENDING_MS = 5_000  # a granted unit's SQL step is over long before; past it, a crash is assumed
# A claim finding the last units only in flight asks again after 30, 60, 120 ms, then hears
# "sold out": a crowd waiting on them costs Redis four calls each, not one every few ms.
BUSY_WAITS = (0.03, 0.06, 0.12)

# KEYS: state hash (stock, limit, ends, claimed, expire), members hash (member -> units),
# pending marks (sorted set "member:code" by deadline).
# ARGV: member id, now (ms), when this member may claim (ms), claim code, deadline (ms).
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'rebuild' end
local s = redis.call('HMGET', KEYS[1], 'stock', 'limit', 'ends', 'claimed', 'expire')
local stock, limit, ends, claimed = tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), tonumber(s[4])
local now = tonumber(ARGV[2])
local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local held = ''
if mine > 0 then held = '+' end  -- a refusal to a member holding a unit: maybe a redelivery
if claimed >= stock then
  if redis.call('ZCOUNT', KEYS[3], '-inf', now) > 0 then return 'reconcile' end
  if redis.call('ZCARD', KEYS[3]) > 0 then return 'busy' .. held end
  return 'sold_out' .. held
end
if now >= ends then return 'closed' .. held end
if now < tonumber(ARGV[3]) then return 'not_started' end
if mine >= limit then return 'limit' end
redis.call('HINCRBY', KEYS[1], 'claimed', 1)
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1] .. ':' .. ARGV[4])
redis.call('PEXPIREAT', KEYS[2], s[5])
redis.call('PEXPIREAT', KEYS[3], s[5])
return 'ok'
"""

# A unit granted here whose SQL write failed goes back, once, and only while its mark is
# there (a rebuild or a reconcile since counted it from the database already). When the
# database said the sale is over (sold out or closed: final there), Redis is made final too
# instead: whatever it counted (a claim missed by a reconcile, a mark run out while its claim
# waited for the database), no later take is granted, so it cannot stay below the database
# and send every press to the SQL step. The marks left belong to claims the database will
# refuse: dropped, so the crowd hears "sold out" at once rather than "busy".
# KEYS: state, members, pending. ARGV: member id, mark, "" / "sold_out" / "closed" /
# "won_last" (the unit won the last one: only made final, the member keeps it).
_GIVE_BACK = """
local mine = redis.call('ZREM', KEYS[3], ARGV[2]) == 1
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
if mine and ARGV[3] ~= 'won_last' then redis.call('HINCRBY', KEYS[2], ARGV[1], -1) end
if ARGV[3] == '' then
  if mine then redis.call('HINCRBY', KEYS[1], 'claimed', -1) end
  return 1
end
if ARGV[3] == 'closed' then
  redis.call('HSET', KEYS[1], 'ends', 0)
else
  local s = redis.call('HMGET', KEYS[1], 'stock', 'claimed')
  if tonumber(s[2]) < tonumber(s[1]) then redis.call('HSET', KEYS[1], 'claimed', s[1]) end
end
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS: state, members, pending. ARGV: stock, limit, ends, claimed, expire at (ms), then
# member, units.
_LOAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'stock', ARGV[1], 'limit', ARGV[2], 'ends', ARGV[3])
redis.call('HSET', KEYS[1], 'claimed', ARGV[4], 'expire', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
if #ARGV > 5 then redis.call('PEXPIREAT', KEYS[2], ARGV[5]) end
return 1
"""

# The counts again from the database, keeping the claims still in flight: drop the given
# marks (committed, or run out without a row), then claimed = the rows + the marks left, and
# each member's units = their rows + their marks left.
# KEYS: state, members, pending. ARGV: rows in all, how many marks to drop, the marks, then
# member, rows.
_RECONCILE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local drop = tonumber(ARGV[2])
for i = 3, 2 + drop do redis.call('ZREM', KEYS[3], ARGV[i]) end
local left = redis.call('ZRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[2])
for i = 3 + drop, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
for _, mark in ipairs(left) do
  redis.call('HINCRBY', KEYS[2], string.match(mark, '^([^:]+):'), 1)
end
redis.call('HSET', KEYS[1], 'claimed', tonumber(ARGV[1]) + #left)
local expire = redis.call('HGET', KEYS[1], 'expire')
redis.call('PEXPIREAT', KEYS[2], expire)
return #left
"""

# A cancel: the sale's counts stay (a member holding a unit is still told so), the end is now.
# KEYS: state.
_CLOSE = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'ends', 0) end
return 1
"""


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass
class RedisStock:
    cache: RedisCache

    def __post_init__(self) -> None:
        redis: Redis = self.cache.redis
        self._take = redis.register_script(_TAKE)
        self._give_back = redis.register_script(_GIVE_BACK)
        self._load = redis.register_script(_LOAD)
        self._reconcile = redis.register_script(_RECONCILE)
        self._close = redis.register_script(_CLOSE)

    def _keys(self, sale_id: int) -> list[str]:
        prefix = self.cache.keys.prefix
        base = f"{prefix}:fs:{sale_id}"
        return [base, f"{base}:members", f"{base}:pending"]

    async def take(
        self,
        db: Database,
        sale_id: int,
        member_id: int,
        now: datetime,
        opens_at: datetime,
        claim_code: str,
    ) -> str:
        """OK (a unit held under the mark of `claim_code` for the SQL step), SQL_ONLY (Redis
        could not be rebuilt or reconciled in time), or why not: sold_out, closed,
        not_started, limit; "sold_out+" and "closed+" when the member holds a unit."""
        deadline = now + timedelta(milliseconds=PENDING_MS)
        args: list[int | str] = [member_id, _ms(now), _ms(opens_at), claim_code, _ms(deadline)]
        keys = self._keys(sale_id)
        repairs, waits = 0, iter(BUSY_WAITS)
        while True:
            verdict = str(await self._take(keys=keys, args=args))
            if verdict.startswith(BUSY):
                wait = next(waits, None)
                if wait is None:  # claims in flight still hold the last units
                    return SOLD_OUT + verdict.removeprefix(BUSY)
                await asyncio.sleep(wait)
                continue
            if verdict not in (REBUILD, RECONCILE):
                return verdict
            repairs += 1
            if repairs > 3:
                return SQL_ONLY
            try:
                await self._repair_once(db, sale_id, now, verdict)
            except LockTimeout:
                return SQL_ONLY  # a repair stuck behind a crowd: the SQL step decides meanwhile

    async def _repair_once(self, db: Database, sale_id: int, now: datetime, verdict: str) -> None:
        """Rebuild or reconcile, once per process however many claims ask at the same time:
        a crowd arriving at a sale whose keys are missing all hear "rebuild", and each taking
        the Redis lock in turn (polled) only to find the work done queued them for seconds."""
        under_way = _REPAIRS.setdefault(self.cache, {})
        key = (verdict, sale_id)
        task = under_way.get(key)
        if task is None:
            if verdict == REBUILD:
                task = asyncio.ensure_future(self.rebuild(db, sale_id))
            else:
                task = asyncio.ensure_future(self.reconcile(db, sale_id, now))
            under_way[key] = task
            task.add_done_callback(lambda _: under_way.pop(key, None))
        await asyncio.shield(task)

    async def script_once(
        self, sale_id: int, member_id: int, now: datetime, opens_at: datetime, claim_code: str
    ) -> str:
        """One run of the take script and nothing around it: bench/flashsale.py's baseline."""
        deadline = now + timedelta(milliseconds=PENDING_MS)
        args: list[int | str] = [member_id, _ms(now), _ms(opens_at), claim_code, _ms(deadline)]
        return str(await self._take(keys=self._keys(sale_id), args=args))

    async def confirm(
        self, sale_id: int, member_id: int, claim_code: str, sold_out: bool = False
    ) -> None:
        """The unit's claim row committed: it is no longer in flight (and when it was the
        last unit, the sale is sold out for good in Redis too)."""
        if sold_out:
            await self.give_back(sale_id, member_id, claim_code, WON_LAST)
            return
        await self.cache.redis.zrem(self._keys(sale_id)[2], f"{member_id}:{claim_code}")

    async def give_back(
        self, sale_id: int, member_id: int, claim_code: str, over: str = ""
    ) -> None:
        """The unit's SQL step failed: the unit goes back, unless the database said why it
        never will again (`over`: sold_out or closed), which makes Redis final instead."""
        await self._give_back(
            keys=self._keys(sale_id), args=[member_id, f"{member_id}:{claim_code}", over]
        )

    async def rebuild(self, db: Database, sale_id: int) -> None:
        """Load the sale's counts from the database (once, whoever asks at the same time)."""
        state = self._keys(sale_id)[0]
        if await self.cache.redis.exists(state):
            return
        async with self.cache.lock(f"fs-rebuild:{sale_id}", ttl=10, wait=10):
            if await self.cache.redis.exists(state):
                return  # rebuilt by whoever held the lock before us
            async with db.reader() as session:
                sale = await session.get(FlashSale, sale_id)
                if sale is None:
                    raise RuntimeError(f"no flash sale {sale_id}")
                claimed, per_member = await counts(session, sale_id)
            now = _ms(datetime.now(UTC))  # only for the keys' expiry, not for a rule
            ends = _ms(sale.ends_at) if sale.state in OPEN else 0  # closed: every take refused
            expire_at = max(ends, now) + KEEP_AFTER_END_MS
            args: list[int] = [sale.stock, sale.per_member_limit, ends, claimed, expire_at]
            for member_id, units in per_member.items():
                args += [member_id, units]
            await self._load(keys=self._keys(sale_id), args=args)

    async def reconcile(self, db: Database, sale_id: int, now: datetime) -> None:
        """The sale looks sold out but some units were taken by claims that never reached the
        database (their process died): count again from the database.

        The rows are read in ONE statement (one snapshot), before the marks: a mark whose
        code is among them is counted as its row, one run out without a row is dropped (its
        unit is free again), any other stays a claim in flight, counted by its mark. A claim
        committing after that read is thus still counted by its mark, never dropped (unless
        its confirm removes the mark before the script runs: then Redis counts one unit
        short, lets one more press through to the SQL step, whose refusal makes Redis final);
        never counted twice."""
        keys = self._keys(sale_id)
        async with self.cache.lock(f"fs-rebuild:{sale_id}", ttl=10, wait=10):
            async with db.reader() as session:
                rows = await session.execute(
                    select(FlashClaim.member_id, FlashClaim.claim_code).where(
                        FlashClaim.sale_id == sale_id
                    )
                )
                per_member: dict[int, int] = {}
                won: set[str] = set()  # by code: a row moved by a merge changed its member
                for member_id, claim_code in rows.all():
                    per_member[int(member_id)] = per_member.get(int(member_id), 0) + 1
                    won.add(str(claim_code))
            claimed = sum(per_member.values())
            marks = await self.cache.redis.zrange(keys[2], 0, -1, withscores=True)
            committed = {str(mark) for mark, _ in marks if str(mark).partition(":")[2] in won}
            ran_out = {str(mark) for mark, at in marks if at <= _ms(now)} - committed
            drop = sorted(committed | ran_out)
            args: list[int | str] = [claimed, len(drop), *drop]
            for member_id, units in per_member.items():
                args += [member_id, units]
            left = await self._reconcile(keys=keys, args=args)
        log.warning(
            "flash sale reconciled sale=%s claimed=%s dropped=%s in_flight=%s",
            sale_id,
            claimed,
            len(ran_out),
            left,
        )

    async def close(self, sale_id: int) -> None:
        """The sale was cancelled (committed): every take is refused from now on.

        Under the rebuild lock, and the counts kept with their end set to 0 rather than
        deleted: a rebuild that read the sale before the cancel committed has loaded it by
        then (and is closed here), and one after it reads the cancel; deleting the keys instead
        could let that stale rebuild load the sale as open after the delete."""
        try:
            async with self.cache.lock(f"fs-rebuild:{sale_id}", ttl=10, wait=10):
                await self._close(keys=self._keys(sale_id))
        except LockTimeout:  # a repair stuck: close anyway (should it load the sale as open
            # after this, the SQL step refuses, and its refusal makes Redis final then)
            log.warning("flash sale closed without the rebuild lock sale=%s", sale_id)
            await self._close(keys=self._keys(sale_id))


# The repairs under way in this process, per cache (tests run many) and (verdict, sale).
_REPAIRS: WeakKeyDictionary[RedisCache, dict[tuple[str, int], asyncio.Future[None]]] = (
    WeakKeyDictionary()
)


_STOCKS: WeakKeyDictionary[RedisCache, RedisStock] = WeakKeyDictionary()


def fast_path(cache: Cache) -> RedisStock | None:
    """The Redis fast path when the cache is Redis; None on the embedded default."""
    if not isinstance(cache, RedisCache):
        return None
    # One per cache: registering the scripts hashes each, which every claim paid for before.
    stock = _STOCKS.get(cache)
    if stock is None:
        stock = _STOCKS[cache] = RedisStock(cache)
    return stock
