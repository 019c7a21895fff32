"""The in-process cache does not keep keys that expired and are never read again."""

from __future__ import annotations

from storage.cache import MemoryCache


async def test_expired_keys_that_nobody_reads_are_swept() -> None:
    now = [0.0]
    cache = MemoryCache(clock=lambda: now[0])
    for n in range(MemoryCache.SWEEP_EVERY - 1):
        await cache.set_if_absent(f"nonce:{n}", "x", ttl=10)
    now[0] = 11.0  # all of them expired, none read again
    await cache.set("kept", "1", ttl=10)

    assert len(cache._data) == 1
    assert await cache.get("kept") == "1"
