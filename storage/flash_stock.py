"""The Redis fast path of flash-sale claims: one Lua script decides window, per-member count
and stock without touching the database for the many who lose.

Redis is never the record: a unit it grants is only won once the SQL claim row and the
conditional UPDATE commit (storage/flashsales.py), and a failed SQL write gives the unit back.
When the sale's keys are missing (a restart, a flush, an eviction) the script answers
"rebuild", and the counts are rebuilt from the database before anything more is decided.
Anything Redis gets wrong after a flush (a claim in flight while it was rebuilt) only lets
more requests through to the SQL step, which still refuses past the stock or the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from storage.cache import Cache, LockTimeout, RedisCache
from storage.db import Database
from storage.flash_claims import counts
from storage.flashsales import OPEN
from storage.models import FlashSale

OK, REBUILD = "ok", "rebuild"
SQL_ONLY = "sql-only"  # no unit held in Redis: the SQL step decides (and nothing to give back)
KEEP_AFTER_END_MS = 3_600_000  # the counts outlive the sale by an hour, then expire

# KEYS: state hash (stock, limit, ends, claimed), members hash (member -> units).
# ARGV: member id, now (ms), when this member may claim (ms).
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'rebuild' end
local s = redis.call('HMGET', KEYS[1], 'stock', 'limit', 'ends', 'claimed', 'expire')
local stock, limit, ends, claimed = tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), tonumber(s[4])
local now = tonumber(ARGV[2])
if claimed >= stock then return 'sold_out' end
if now >= ends then return 'closed' end
if now < tonumber(ARGV[3]) then return 'not_started' end
local mine = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if mine >= limit then return 'limit' end
redis.call('HINCRBY', KEYS[1], 'claimed', 1)
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('PEXPIREAT', KEYS[2], s[5])
return 'ok'
"""

# A unit granted here whose SQL write failed goes back (only if the keys are still there).
_GIVE_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'claimed', -1)
  redis.call('HINCRBY', KEYS[2], ARGV[1], -1)
end
return 1
"""

# KEYS: state, members. ARGV: stock, limit, ends, claimed, expire at (ms), then member, units.
_LOAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'stock', ARGV[1], 'limit', ARGV[2], 'ends', ARGV[3])
redis.call('HSET', KEYS[1], 'claimed', ARGV[4], 'expire', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
if #ARGV > 5 then redis.call('PEXPIREAT', KEYS[2], ARGV[5]) end
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

    def _keys(self, sale_id: int) -> list[str]:
        prefix = self.cache.keys.prefix
        return [f"{prefix}:fs:{sale_id}", f"{prefix}:fs:{sale_id}:members"]

    async def take(
        self, db: Database, sale_id: int, member_id: int, now: datetime, opens_at: datetime
    ) -> str:
        """OK (a unit held for the SQL step), SQL_ONLY (Redis could not be rebuilt in time), or
        why not: sold_out, closed, not_started, limit."""
        args = [member_id, _ms(now), _ms(opens_at)]
        for _ in range(3):
            verdict = str(await self._take(keys=self._keys(sale_id), args=args))
            if verdict != REBUILD:
                return verdict
            try:
                await self.rebuild(db, sale_id)
            except LockTimeout:
                break  # a rebuild stuck behind a crowd: the SQL step decides alone meanwhile
        return SQL_ONLY

    async def give_back(self, sale_id: int, member_id: int) -> None:
        await self._give_back(keys=self._keys(sale_id), args=[member_id])

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

    async def forget(self, sale_id: int) -> None:
        """The sale changed (cancelled): the next claim rebuilds from the database."""
        await self.cache.redis.delete(*self._keys(sale_id))


def fast_path(cache: Cache) -> RedisStock | None:
    """The Redis fast path when the cache is Redis; None on the embedded default."""
    # Cheap to make: registering a script only hashes it; Redis loads it on first use.
    return RedisStock(cache) if isinstance(cache, RedisCache) else None
