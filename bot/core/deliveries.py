"""Exactly-once handling of webhook deliveries that the apps may repeat.

Telegram (`claim`): the first delivery of an update id claims it for the TTL; a redelivery
is dropped.

WeChat (`take` / `wait`): the first delivery takes a short *lease* on the message id, renewed
while it is being worked on, and stores its answer when done; a repeat that arrives meanwhile
waits for that answer. If the owner dies (kill -9, a crash), the lease runs out within
`lease` seconds and WeChat's next retry takes it and does the work: nothing is lost, and the
database's unique keys (one check-in a day, ledger idempotency keys) keep the effects single.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from storage.cache import Cache

LEASE_SECONDS = 6.0  # shorter than WeChat's ~5 s between retries plus its 5 s deadline


@dataclass(frozen=True)
class Waited:
    """What a repeat found: the first delivery's answer, or the lease free to take."""

    answer: str | None
    free: bool


class Deliveries:
    def __init__(
        self, cache: Cache, channel: str, ttl: float = 600, lease: float = LEASE_SECONDS
    ) -> None:
        self.cache = cache
        self.channel = channel
        self.ttl = ttl
        self.lease = lease

    def _claim_key(self, delivery_id: str) -> str:
        return self.cache.keys.inbound_claim(self.channel, delivery_id)

    def _reply_key(self, delivery_id: str) -> str:
        return self.cache.keys.inbound_reply(self.channel, delivery_id)

    async def claim(self, delivery_id: str) -> bool:
        """True for the first delivery of this id within the TTL."""
        return await self.cache.set_if_absent(self._claim_key(delivery_id), "1", self.ttl)

    async def release(self, delivery_id: str) -> None:
        """Give up a claim whose handling failed, so that a later repeat is handled afresh."""
        await self.cache.delete(self._claim_key(delivery_id))

    async def store(self, delivery_id: str, answer: str) -> None:
        await self.cache.set(self._reply_key(delivery_id), answer, self.ttl)

    async def stored(self, delivery_id: str) -> str | None:
        return await self.cache.get(self._reply_key(delivery_id))

    async def answer(self, delivery_id: str, timeout: float) -> str | None:
        """The first delivery's answer, waiting up to `timeout` for it to be stored."""
        return (await self.wait(delivery_id, timeout)).answer

    @contextlib.asynccontextmanager
    async def take(self, delivery_id: str) -> AsyncIterator[bool]:
        """Take the lease on a delivery (yields False if another holder has it); renewed in
        the background while the block runs, given back when it ends."""
        key = self._claim_key(delivery_id)
        token = secrets.token_hex(8)
        if not await self.cache.set_if_absent(key, token, self.lease):
            yield False
            return
        renewing = asyncio.create_task(self._renew(key, token))
        try:
            yield True
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await self.cache.compare_and_delete(key, token)

    async def _renew(self, key: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            # Only while it is still ours: a lease that lapsed (a stalled process) and was
            # taken by a retry stays with the retry.
            if await self.cache.get(key) != token:
                return
            await self.cache.set(key, token, self.lease)

    async def wait(self, delivery_id: str, timeout: float) -> Waited:
        """Wait up to `timeout` for the first delivery's answer; stop early if its lease is
        free (its owner finished without an answer, failed, or died)."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            answer = await self.stored(delivery_id)
            if answer is not None:
                return Waited(answer, free=False)
            if await self.cache.get(self._claim_key(delivery_id)) is None:
                # The answer may have been stored just before the lease was given back.
                answer = await self.stored(delivery_id)
                return Waited(answer, free=answer is None)
            if time.monotonic() >= deadline:
                return Waited(None, free=False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
