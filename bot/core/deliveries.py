"""Exactly-once handling of webhook deliveries that the apps may repeat.

The first delivery of an id claims it in the cache (Redis in scale mode, so the claim holds
across processes) and later stores its answer; a repeat that arrives meanwhile waits for that
answer, and one that arrives afterwards gets it at once.
"""

from __future__ import annotations

import asyncio
import time

from storage.cache import Cache


class Deliveries:
    def __init__(self, cache: Cache, channel: str, ttl: float = 600) -> None:
        self.cache = cache
        self.channel = channel
        self.ttl = ttl

    async def claim(self, delivery_id: str) -> bool:
        """True for the first delivery of this id within the TTL."""
        key = self.cache.keys.inbound_claim(self.channel, delivery_id)
        return await self.cache.set_if_absent(key, "1", self.ttl)

    async def release(self, delivery_id: str) -> None:
        """Give up a claim whose handling failed, so that a later repeat is handled afresh."""
        await self.cache.delete(self.cache.keys.inbound_claim(self.channel, delivery_id))

    async def store(self, delivery_id: str, answer: str) -> None:
        key = self.cache.keys.inbound_reply(self.channel, delivery_id)
        await self.cache.set(key, answer, self.ttl)

    async def answer(self, delivery_id: str, timeout: float) -> str | None:
        """The first delivery's answer, waiting up to `timeout` for it to be stored."""
        key = self.cache.keys.inbound_reply(self.channel, delivery_id)
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            stored = await self.cache.get(key)
            if stored is not None or time.monotonic() >= deadline:
                return stored
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
