"""The cache contract (TTL keys, set-if-absent, counters, short locks) and its two backends.

In-process (`MemoryCache`) serves a single process; `RedisCache` holds across processes.
Every key format lives in `Keys`, so nothing else spells out cache keys.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


class LockTimeout(Exception):
    """A short lock could not be taken within its wait time."""


@dataclass(frozen=True)
class Keys:
    """Owner of every cache key format; `prefix` separates deployments (and tests)."""

    prefix: str = "mb"

    def flood(self, member_id: int, minute: int) -> str:
        return f"{self.prefix}:flood:{member_id}:{minute}"

    def link_attempts(self, member_id: int) -> str:
        return f"{self.prefix}:link-attempts:{member_id}"

    def invite_attempts(self, member_id: int) -> str:
        return f"{self.prefix}:invite-attempts:{member_id}"

    def wechat_invite_qr(self, member_id: int) -> str:
        return f"{self.prefix}:wechat-invite-qr:{member_id}"

    def inbound_claim(self, channel: str, delivery_id: str) -> str:
        return f"{self.prefix}:inbound:{channel}:{delivery_id}"

    def inbound_reply(self, channel: str, delivery_id: str) -> str:
        return f"{self.prefix}:inbound-reply:{channel}:{delivery_id}"

    def inbound_failures(self, channel: str, delivery_id: str) -> str:
        return f"{self.prefix}:inbound-failures:{channel}:{delivery_id}"

    def dialog(self, member_id: int) -> str:
        return f"{self.prefix}:dialog:{member_id}"

    def complaint_draft(self, member_id: int) -> str:
        return f"{self.prefix}:complaint-draft:{member_id}"

    def confirmation(self, member_id: int, what: str) -> str:
        return f"{self.prefix}:confirm:{what}:{member_id}"

    def privacy_notice(self, member_id: int) -> str:
        return f"{self.prefix}:privacy-notice:{member_id}"

    def options(self, channel: str, external_id: str) -> str:
        return f"{self.prefix}:options:{channel}:{external_id}"

    def wechat_token(self, appid: str) -> str:
        return f"{self.prefix}:wechat-token:{appid}"

    def wechat_nonce(self, timestamp: str, nonce: str) -> str:
        return f"{self.prefix}:wechat-nonce:{timestamp}:{nonce}"

    def wechat_window(self, openid: str) -> str:
        # One number per follower (bot.channels.wechat_api.pack_window); "wechat-window" held
        # "until:sends:opened" text before, with the sends counted under a second key.
        return f"{self.prefix}:wechat-quota:{openid}"

    def outbox_held(self, channel: str, chat_id: str) -> str:
        return f"{self.prefix}:outbox-held:{channel}:{chat_id}"

    def rate(self, name: str, bucket: int) -> str:
        return f"{self.prefix}:rate:{name}:{bucket}"

    def lock(self, name: str) -> str:
        return f"{self.prefix}:lock:{name}"


@dataclass(frozen=True)
class Guard:
    """A key that keeps the first value written to it for `ttl` seconds, checked in the same
    call as a lease: a later value that differs is refused (a signature serving one body)."""

    key: str
    value: str
    ttl: float


@dataclass(frozen=True)
class Lease:
    """What `take_lease` found: the answer stored for the work, or the lease taken, or
    neither (another holder has it); `refused`: the guard holds another value (nothing else
    was looked at or taken)."""

    taken: bool = False
    answer: str | None = None
    refused: bool = False


class Cache(Protocol):
    keys: Keys

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, ttl: float) -> None: ...
    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool: ...
    async def delete(self, key: str) -> None: ...
    async def incr(self, key: str, ttl: float) -> int: ...
    async def compare_and_delete(self, key: str, value: str) -> None: ...
    async def extend(self, key: str, value: str, ttl: float) -> bool:
        """Reset the key's TTL if it still holds `value`; False (nothing done) if not."""
        ...

    async def take_lease(
        self, key: str, token: str, ttl: float, answer_key: str, guard: Guard | None = None
    ) -> Lease:
        """In one step: the guard checked (and set if absent), then the answer at
        `answer_key` if there is one, else the lease `key` set to `token` if absent."""
        ...

    async def answer_and_release(
        self, answer_key: str, answer: str, ttl: float, key: str, token: str
    ) -> None:
        """In one step: the answer stored for `ttl`, the lease deleted if still `token`."""
        ...

    def lock(
        self, name: str, ttl: float = 10, wait: float = 5
    ) -> AbstractAsyncContextManager[None]: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class MemoryCache:
    """Single-process cache; expiry is checked on read, and expired keys are swept every
    SWEEP_EVERY writes (most keys, e.g. a delivery id or a signature's nonce, are never read
    again: without the sweep they would pile up for the life of the process)."""

    SWEEP_EVERY = 4096

    def __init__(
        self, keys: Keys | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.keys = keys or Keys()
        self._data: dict[str, tuple[str, float]] = {}
        self._clock = clock
        self._writes = 0

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % self.SWEEP_EVERY == 0:
            now = self._clock()
            for key in [k for k, (_, deadline) in self._data.items() if deadline <= now]:
                del self._data[key]

    def _alive(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, deadline = item
        if deadline <= self._clock():
            del self._data[key]
            return None
        return value

    async def get(self, key: str) -> str | None:
        return self._alive(key)

    async def set(self, key: str, value: str, ttl: float) -> None:
        self._data[key] = (value, self._clock() + ttl)
        self._wrote()

    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        if self._alive(key) is not None:
            return False
        self._data[key] = (value, self._clock() + ttl)
        self._wrote()
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, ttl: float) -> int:
        current = self._alive(key)
        if current is None:
            self._data[key] = ("1", self._clock() + ttl)
            self._wrote()
            return 1
        value = int(current) + 1
        self._data[key] = (str(value), self._data[key][1])
        return value

    @asynccontextmanager
    async def lock(self, name: str, ttl: float = 10, wait: float = 5) -> AsyncIterator[None]:
        async with _acquire(self, name, ttl, wait):
            yield

    async def compare_and_delete(self, key: str, value: str) -> None:
        if self._alive(key) == value:
            del self._data[key]

    async def extend(self, key: str, value: str, ttl: float) -> bool:
        if self._alive(key) != value:
            return False
        self._data[key] = (value, self._clock() + ttl)
        return True

    async def take_lease(
        self, key: str, token: str, ttl: float, answer_key: str, guard: Guard | None = None
    ) -> Lease:
        if guard is not None:
            seen = self._alive(guard.key)
            if seen is None:
                self._data[guard.key] = (guard.value, self._clock() + guard.ttl)
                self._wrote()
            elif seen != guard.value:
                return Lease(refused=True)
        answer = self._alive(answer_key)
        if answer is not None:
            return Lease(answer=answer)
        if self._alive(key) is not None:
            return Lease()
        self._data[key] = (token, self._clock() + ttl)
        self._wrote()
        return Lease(taken=True)

    async def answer_and_release(
        self, answer_key: str, answer: str, ttl: float, key: str, token: str
    ) -> None:
        self._data[answer_key] = (answer, self._clock() + ttl)
        self._wrote()
        if self._alive(key) == token:
            del self._data[key]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._data.clear()


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: lease, answer[, guard]; ARGV: token, lease ms[, guard value, guard ms]
_TAKE = """
if KEYS[3] then
  local seen = redis.call('get', KEYS[3])
  if not seen then
    redis.call('set', KEYS[3], ARGV[3], 'PX', ARGV[4])
  elseif seen ~= ARGV[3] then
    return {'refused'}
  end
end
local answer = redis.call('get', KEYS[2])
if answer then return {'answer', answer} end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'taken'} end
return {'busy'}
"""

# KEYS: answer, lease; ARGV: answer, answer ms, token
_ANSWER = """
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('get', KEYS[2]) == ARGV[3] then redis.call('del', KEYS[2]) end
return 1
"""

_INCR = """
local n = redis.call('incr', KEYS[1])
if n == 1 then redis.call('pexpire', KEYS[1], ARGV[1]) end
return n
"""


# A script call waiting for its turn's pipeline: script, keys, args, where its answer goes.
_Call = tuple[AsyncScript, list[str], list[str | int], "asyncio.Future[Any]"]


class _ReadyPool(ConnectionPool):
    """redis-py's pool, with a cheaper check that a connection handed out is ready.

    redis-py checks each connection it hands out for unread data by reading its socket under
    a zero timeout: a cancelled read and an exception per command, about half of a simple
    command's CPU. Here the check looks at what the event loop has already received (data
    or the server's close) and at what the parser holds unparsed, without a read; a
    connection with any of these is opened afresh. A command cancelled half-way already
    closes its connection (redis-py), so nothing of it is left to find."""

    async def ensure_connection(self, connection: AbstractConnection) -> None:
        reader = getattr(connection, "_reader", None)
        if not isinstance(reader, asyncio.StreamReader):  # not connected yet, or unknown
            await super().ensure_connection(connection)
            return
        if (
            reader.at_eof()
            or reader.exception() is not None
            or _buffered(reader)
            or _parsed_ahead(connection)
        ):
            await connection.disconnect()
        await connection.connect()  # type: ignore[no-untyped-call]


def _buffered(reader: asyncio.StreamReader) -> bool:
    return bool(getattr(reader, "_buffer", b""))


def _parsed_ahead(connection: AbstractConnection) -> bool:
    """Data the parser has read off the socket but not handed out: hiredis's reader, or the
    pure-Python parser's buffer."""
    parser = getattr(connection, "_parser", None)
    has_data = getattr(getattr(parser, "_reader", None), "has_data", None)
    if callable(has_data):
        return bool(has_data())
    return bool(getattr(parser, "_buffer", b""))


class RedisCache:
    """Cache on Redis (redis.asyncio); counters, lock release and the lease steps are single
    Lua scripts.

    Counters and lease steps asked for in one turn of the event loop (the outbox spending
    many WeChat followers' windows at once; a crowd's webhook posts arriving together) go to
    Redis in one pipeline: one round trip, one socket write and one read for all, each still
    its own atomic script call."""

    def __init__(self, url: str, keys: Keys | None = None) -> None:
        self.keys = keys or Keys()
        self.redis: Redis = Redis.from_pool(_ReadyPool.from_url(url, decode_responses=True))
        self._release = self.redis.register_script(_RELEASE)
        self._incr = self.redis.register_script(_INCR)
        self._extend = self.redis.register_script(_EXTEND)
        self._take = self.redis.register_script(_TAKE)
        self._answer = self.redis.register_script(_ANSWER)
        self._queued: list[_Call] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def get(self, key: str) -> str | None:
        value = await self.redis.get(key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl: float) -> None:
        await self.redis.set(key, value, px=_ms(ttl))

    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        return bool(await self.redis.set(key, value, px=_ms(ttl), nx=True))

    async def delete(self, key: str) -> None:
        await self.redis.delete(key)

    async def incr(self, key: str, ttl: float) -> int:
        return int(cast(int, await self._run(self._incr, [key], [_ms(ttl)])))

    async def _run(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> Any:
        """One script call, sent with the others of this turn of the event loop."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[Any] = loop.create_future()
        self._queued.append((script, keys, args, answered))
        if len(self._queued) == 1:  # the first of this turn: the others join it
            loop.call_soon(self._flush)
        return await answered

    def _flush(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._flushes.add(task)  # referenced until done
        task.add_done_callback(self._flushes.discard)

    async def _send(self, batch: list[_Call]) -> None:
        try:
            if len(batch) == 1:
                script, keys, args, _ = batch[0]
                answers: list[object] = [await script(keys=keys, args=args)]
            else:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for script, keys, args, _ in batch:
                        pipe.evalsha(script.sha, len(keys), *keys, *map(str, args))
                    answers = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for *_, answered in batch:
                if not answered.done():
                    answered.set_exception(exc)
            return
        for i, answer in enumerate(answers):
            if isinstance(answer, NoScriptError):  # Redis restarted: load it again
                script, keys, args, _ = batch[i]
                try:
                    answers[i] = await script(keys=keys, args=args)
                except Exception as exc:  # this call's failure alone: the others ran
                    answers[i] = exc
        for (*_, answered), answer in zip(batch, answers, strict=True):
            if answered.done():  # its caller gave up (cancelled)
                continue
            if isinstance(answer, Exception):
                answered.set_exception(answer)
            else:
                answered.set_result(answer)

    @asynccontextmanager
    async def lock(self, name: str, ttl: float = 10, wait: float = 5) -> AsyncIterator[None]:
        async with _acquire(self, name, ttl, wait):
            yield

    async def compare_and_delete(self, key: str, value: str) -> None:
        await self._release(keys=[key], args=[value])

    async def extend(self, key: str, value: str, ttl: float) -> bool:
        return bool(await self._extend(keys=[key], args=[value, _ms(ttl)]))

    async def take_lease(
        self, key: str, token: str, ttl: float, answer_key: str, guard: Guard | None = None
    ) -> Lease:
        keys = [key, answer_key]
        args: list[str | int] = [token, _ms(ttl)]
        if guard is not None:
            keys.append(guard.key)
            args += [guard.value, _ms(guard.ttl)]
        found = await self._run(self._take, keys, args)
        if found[0] == "answer":
            return Lease(answer=str(found[1]))
        return Lease(taken=found[0] == "taken", refused=found[0] == "refused")

    async def answer_and_release(
        self, answer_key: str, answer: str, ttl: float, key: str, token: str
    ) -> None:
        await self._run(self._answer, [answer_key, key], [answer, _ms(ttl), token])

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self.redis.aclose()


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


@asynccontextmanager
async def _acquire(cache: Cache, name: str, ttl: float, wait: float) -> AsyncIterator[None]:
    """Set-if-absent with a random token, polled until `wait`; released only by its owner.

    The TTL bounds how long a crashed holder can block others.
    """
    key = cache.keys.lock(name)
    token = secrets.token_hex(8)
    deadline = time.monotonic() + wait
    delay = 0.005
    while not await cache.set_if_absent(key, token, ttl):
        if time.monotonic() >= deadline:
            raise LockTimeout(name)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    try:
        yield
    finally:
        await cache.compare_and_delete(key, token)


def make_cache(redis_url: str | None, keys: Keys | None = None) -> Cache:
    return RedisCache(redis_url, keys) if redis_url else MemoryCache(keys)
