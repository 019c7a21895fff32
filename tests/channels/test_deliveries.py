"""The webhook deliveries' lease (bot/core/deliveries.py): its renewal under cache errors
and cancellation. The end-to-end behaviour is in the Telegram and WeChat webhook tests."""

from __future__ import annotations

import asyncio
import logging

from bot.core.deliveries import Deliveries
from storage.cache import MemoryCache

HANG = 5  # seconds: only for a test whose fix is missing, which would otherwise wait forever


async def test_a_failed_renewal_does_not_keep_the_answer_from_being_stored(cache, monkeypatch):
    extend = cache.extend
    failed = asyncio.Event()

    async def blip_once(key: str, value: str, ttl: float) -> bool:
        if not failed.is_set():
            failed.set()
            raise ConnectionError("a cache blip")
        return await extend(key, value, ttl)

    monkeypatch.setattr(cache, "extend", blip_once)
    deliveries = Deliveries(cache, "telegram", lease=0.03)

    async with deliveries.lease_on("u1") as held:
        assert held.taken
        await failed.wait()  # the work outlasts a third of the lease; its renewal fails
        await held.done("answer")

    assert await deliveries.stored("u1") == "answer"  # a redelivery gets it, redoes nothing
    assert await cache.get(cache.keys.inbound_claim("telegram", "u1")) is None


async def test_a_failed_renewal_is_tried_again_and_slow_work_keeps_its_lease(monkeypatch, caplog):
    now = [0.0]
    cache = MemoryCache(clock=lambda: now[0])  # the lease's time, moved by hand
    extend = cache.extend
    calls: list[asyncio.Event] = [asyncio.Event(), asyncio.Event()]

    async def blip_once(key: str, value: str, ttl: float) -> bool:
        done = next((call for call in calls if not call.is_set()), None)
        if done is not None:
            done.set()
            if done is calls[0]:
                raise ConnectionError("a cache blip")
        return await extend(key, value, ttl)

    monkeypatch.setattr(cache, "extend", blip_once)
    deliveries = Deliveries(cache, "telegram", lease=0.03)
    caplog.set_level(logging.WARNING, "memberbot.deliveries")

    async with deliveries.lease_on("u2") as held:
        assert held.taken
        await calls[0].wait()  # the first renewal fails ...
        now[0] = 0.02  # ... with the lease (until 0.03) still alive
        await asyncio.wait_for(calls[1].wait(), HANG)  # the next tick renews it
        now[0] = 0.04  # past the lease as first taken
        async with deliveries.lease_on("u2") as redelivery:
            second_taken = redelivery.taken
        await held.done("answer")

    assert second_taken is False  # the slow work still holds it: nobody does it twice
    assert await deliveries.stored("u2") == "answer"
    assert [r.getMessage() for r in caplog.records] == [
        "lease renewal failed delivery=u2 error=ConnectionError"
    ]


async def test_a_caller_cancelled_while_the_renewal_stops_is_cancelled_and_gives_the_lease_back(
    monkeypatch,
):
    cache = MemoryCache()
    renewing: list[asyncio.Task[object]] = []
    renewal_started, stopping, release = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_to_stop(key: str, value: str, ttl: float) -> bool:
        """A renewal that finishes its call before it stops (as a write in flight would)."""
        task = asyncio.current_task()
        assert task is not None
        renewing.append(task)
        renewal_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopping.set()
            await release.wait()
            raise
        return True

    monkeypatch.setattr(cache, "extend", slow_to_stop)
    deliveries = Deliveries(cache, "telegram", lease=0.03)

    async def work() -> None:
        async with deliveries.lease_on("u3") as held:
            assert held.taken
            await renewal_started.wait()
        # Leaving the block stops the renewal: the caller waits for it there.

    caller = asyncio.create_task(work())
    await stopping.wait()
    caller.cancel()  # e.g. the server shutting down
    release.set()
    await asyncio.wait({caller, *renewing})

    assert caller.cancelled()  # its cancellation is not swallowed by the renewal's
    assert await cache.get(cache.keys.inbound_claim("telegram", "u3")) is None
