"""Exactly-once handling of webhook deliveries that the apps may repeat.

WeChat and Telegram webhooks (`lease` / `wait`): the first delivery takes a short *lease* on
the delivery id, renewed while it is being worked on, and stores its answer when done; a
repeat that arrives meanwhile waits for that answer, and a later one gets it. If the owner
dies (kill -9, a crash), the lease runs out within `lease` seconds and the app's next retry
takes it and does the work: nothing is lost, and the database's unique keys (one check-in a
day, ledger idempotency keys) keep the effects single.

Two cache calls per delivery: one to take the lease or find the answer (with a guard, e.g.
the signature's nonce, checked in the same call), one to store the answer and give the lease
back. The lease is renewed only for work still running after a third of the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from storage.cache import Cache, Guard, Lease

__all__ = ["LEASE_SECONDS", "Deliveries", "Guard", "Held", "Waited"]

log = logging.getLogger("memberbot.deliveries")

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

    async def stored(self, delivery_id: str) -> str | None:
        return await self.cache.get(self._reply_key(delivery_id))

    async def failed(self, delivery_id: str) -> int:
        """Count one failed handling of a delivery; the count so far (kept for the TTL)."""
        return await self.cache.incr(
            self.cache.keys.inbound_failures(self.channel, delivery_id), self.ttl
        )

    @contextlib.asynccontextmanager
    async def take(self, delivery_id: str) -> AsyncIterator[bool]:
        """Take the lease on a delivery (yields False if another holder has it, or if an
        answer is stored); renewed while the block runs, given back when it ends."""
        async with self.lease_on(delivery_id) as held:
            yield held.taken

    @contextlib.asynccontextmanager
    async def lease_on(self, delivery_id: str, guard: Guard | None = None) -> AsyncIterator[Held]:
        """One cache call: the guard checked, then the stored answer if any, else the lease
        taken. A lease taken is renewed while the block runs; `Held.done` stores the answer
        and gives the lease back in one call; a block left without it gives the lease back
        (an exception: no answer, so a repeat does the work afresh)."""
        key = self._claim_key(delivery_id)
        token = secrets.token_hex(8)
        found = await self.cache.take_lease(
            key, token, self.lease, self._reply_key(delivery_id), guard
        )
        held = Held(self, delivery_id, key, token, found)
        if not found.taken:
            yield held
            return
        held.start_renewing()
        try:
            yield held
        finally:
            try:
                await held.stop_renewing()
            finally:  # even if the caller is cancelled meanwhile
                if not held.released:
                    await self.cache.compare_and_delete(key, token)

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


class Held:
    """A delivery's lease as `Deliveries.lease_on` found it."""

    def __init__(
        self, deliveries: Deliveries, delivery_id: str, key: str, token: str, found: Lease
    ) -> None:
        self._deliveries = deliveries
        self.delivery_id = delivery_id
        self._key = key
        self._token = token
        self.taken = found.taken
        self.answer = found.answer
        self.refused = found.refused
        self.released = False
        self._timer: asyncio.TimerHandle | None = None
        self._renewing: asyncio.Task[None] | None = None

    def start_renewing(self) -> None:
        """Renewal begins a third of the lease from now: most work is done by then, and
        costs neither a task nor a cache call for it."""
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._deliveries.lease / 3, self._renew_from_now)

    def _renew_from_now(self) -> None:
        self._timer = None
        self._renewing = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        cache, lease = self._deliveries.cache, self._deliveries.lease
        # Only while it is still ours: a lease that lapsed (a stalled process) and was taken
        # by a retry stays with the retry. A renewal that fails (a cache blip) is tried again
        # at the next tick: the lease still has two thirds of its time.
        while True:
            try:
                if not await cache.extend(self._key, self._token, lease):
                    return
            except Exception as exc:
                log.warning(
                    "lease renewal failed delivery=%s error=%s",
                    self.delivery_id,
                    type(exc).__name__,
                )
            await asyncio.sleep(lease / 3)

    async def stop_renewing(self) -> None:
        """Stop the renewal. Never raises the renewal's own error (the work it kept leased
        is done, and its answer still to be stored); the caller's cancellation goes through."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        renewing, self._renewing = self._renewing, None
        if renewing is None:
            return
        renewing.cancel()
        await asyncio.wait({renewing})
        if not renewing.cancelled() and renewing.exception() is not None:
            log.error(
                "lease renewal stopped delivery=%s", self.delivery_id, exc_info=renewing.exception()
            )

    async def done(self, answer: str) -> None:
        """Store the answer (repeats get it for the TTL) and give the lease back, in one call."""
        await self.stop_renewing()
        deliveries = self._deliveries
        await deliveries.cache.answer_and_release(
            deliveries._reply_key(self.delivery_id), answer, deliveries.ttl, self._key, self._token
        )
        self.released = True
