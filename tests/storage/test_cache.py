"""One cache contract, run on MemoryCache and on RedisCache (the `cache` fixture).

The TTL tests sleep for real (tens of milliseconds): they test real expiry on both backends.
"""

from __future__ import annotations

import asyncio

import pytest
from redis._parsers import _AsyncRESP2Parser

from storage.cache import Guard, Keys, Lease, LockTimeout, MemoryCache, RedisCache, make_cache
from tests.conftest import REDIS_URL

SHORT = 0.05  # seconds
PAST_SHORT = 0.12


async def test_get_of_an_unknown_key_is_none(cache):
    assert await cache.get(f"{cache.keys.prefix}:nothing") is None


async def test_set_then_get_returns_the_value_until_the_ttl_passes(cache):
    key = f"{cache.keys.prefix}:k"
    await cache.set(key, "v1", ttl=SHORT)
    assert await cache.get(key) == "v1"
    await asyncio.sleep(PAST_SHORT)
    assert await cache.get(key) is None


async def test_set_overwrites_the_value_and_the_ttl(cache):
    key = f"{cache.keys.prefix}:k"
    await cache.set(key, "old", ttl=SHORT)
    await cache.set(key, "new", ttl=30)
    await asyncio.sleep(PAST_SHORT)
    assert await cache.get(key) == "new"


async def test_delete_removes_the_key(cache):
    key = f"{cache.keys.prefix}:k"
    await cache.set(key, "v", ttl=30)
    await cache.delete(key)
    assert await cache.get(key) is None
    await cache.delete(key)  # deleting what is gone is fine


async def test_concurrent_increments_count_each_once_and_new_counters_get_their_ttl(cache):
    key = f"{cache.keys.prefix}:n"
    others = [f"{cache.keys.prefix}:n{i}" for i in range(5)]

    counts = await asyncio.gather(
        *(cache.incr(key, ttl=30) for _ in range(50)),
        *(cache.incr(other, ttl=SHORT) for other in others),
    )

    assert sorted(counts[:50]) == list(range(1, 51))
    assert counts[50:] == [1] * 5
    await asyncio.sleep(PAST_SHORT)
    assert [await cache.get(other) for other in others] == [None] * 5
    assert await cache.incr(key, ttl=30) == 51


async def test_counters_still_count_when_redis_has_forgotten_the_script(cache):
    if isinstance(cache, RedisCache):
        cache._incr.sha = "0" * 40  # as after a Redis restart: EVALSHA answers NOSCRIPT
    key = f"{cache.keys.prefix}:n"

    counts = await asyncio.gather(*(cache.incr(key, ttl=30) for _ in range(5)))

    assert sorted(counts) == [1, 2, 3, 4, 5]


async def test_set_if_absent_succeeds_only_once(cache):
    key = f"{cache.keys.prefix}:once"
    assert await cache.set_if_absent(key, "first", ttl=30) is True
    assert await cache.set_if_absent(key, "second", ttl=30) is False
    assert await cache.get(key) == "first"


async def test_set_if_absent_succeeds_again_after_expiry(cache):
    key = f"{cache.keys.prefix}:once"
    assert await cache.set_if_absent(key, "first", ttl=SHORT) is True
    await asyncio.sleep(PAST_SHORT)
    assert await cache.set_if_absent(key, "second", ttl=30) is True
    assert await cache.get(key) == "second"


async def test_concurrent_set_if_absent_has_exactly_one_winner(cache):
    key = f"{cache.keys.prefix}:race"
    won = await asyncio.gather(*(cache.set_if_absent(key, str(i), ttl=30) for i in range(40)))
    assert won.count(True) == 1
    assert await cache.get(key) == str(won.index(True))


async def test_incr_counts_from_one(cache):
    key = f"{cache.keys.prefix}:n"
    assert [await cache.incr(key, ttl=30) for _ in range(3)] == [1, 2, 3]
    assert await cache.get(key) == "3"


async def test_incr_window_expires_from_the_first_increment(cache):
    key = f"{cache.keys.prefix}:n"
    assert await cache.incr(key, ttl=0.4) == 1
    await asyncio.sleep(0.15)
    assert await cache.incr(key, ttl=0.4) == 2  # must not push the deadline back
    await asyncio.sleep(0.3)
    assert await cache.get(key) is None
    assert await cache.incr(key, ttl=30) == 1


async def test_fifty_concurrent_incr_give_exactly_one_to_fifty(cache):
    key = f"{cache.keys.prefix}:n"
    counts = await asyncio.gather(*(cache.incr(key, ttl=30) for _ in range(50)))
    assert sorted(counts) == list(range(1, 51))
    assert await cache.get(key) == "50"


async def test_compare_and_delete_deletes_only_with_the_matching_value(cache):
    key = f"{cache.keys.prefix}:owned"
    await cache.set(key, "token-a", ttl=30)
    await cache.compare_and_delete(key, "token-b")
    assert await cache.get(key) == "token-a"
    await cache.compare_and_delete(key, "token-a")
    assert await cache.get(key) is None


async def test_extend_renews_only_the_holders_key(cache):
    key = f"{cache.keys.prefix}:lease"
    await cache.set(key, "token-a", ttl=SHORT)

    assert await cache.extend(key, "token-b", ttl=30) is False
    assert await cache.extend(key, "token-a", ttl=30) is True
    await asyncio.sleep(PAST_SHORT)
    assert await cache.get(key) == "token-a"
    await cache.delete(key)
    assert await cache.extend(key, "token-a", ttl=30) is False
    assert await cache.get(key) is None  # a lapsed lease is not brought back


async def test_take_lease_takes_a_free_lease_once(cache):
    p = cache.keys.prefix
    first = await cache.take_lease(f"{p}:lease", "t1", 30, f"{p}:answer")
    second = await cache.take_lease(f"{p}:lease", "t2", 30, f"{p}:answer")

    assert first == Lease(taken=True)
    assert second == Lease()
    assert await cache.get(f"{p}:lease") == "t1"


async def test_concurrent_take_lease_has_exactly_one_winner(cache):
    p = cache.keys.prefix
    found = await asyncio.gather(
        *(cache.take_lease(f"{p}:lease", f"t{i}", 30, f"{p}:answer") for i in range(20))
    )
    assert sum(lease.taken for lease in found) == 1


async def test_take_lease_gives_the_stored_answer_and_takes_nothing(cache):
    p = cache.keys.prefix
    await cache.set(f"{p}:answer", "the answer", ttl=30)

    found = await cache.take_lease(f"{p}:lease", "t1", 30, f"{p}:answer")

    assert found == Lease(answer="the answer")
    assert await cache.get(f"{p}:lease") is None


async def test_the_lease_lapses_with_its_ttl(cache):
    p = cache.keys.prefix
    assert (await cache.take_lease(f"{p}:lease", "t1", SHORT, f"{p}:answer")).taken
    await asyncio.sleep(PAST_SHORT)
    assert (await cache.take_lease(f"{p}:lease", "t2", 30, f"{p}:answer")).taken


async def test_take_lease_keeps_the_guards_first_value_and_refuses_another(cache):
    p = cache.keys.prefix
    guard = Guard(f"{p}:nonce", "body-1", 30)

    first = await cache.take_lease(f"{p}:lease-1", "t1", 30, f"{p}:answer-1", guard)
    again = await cache.take_lease(f"{p}:lease-1", "t2", 30, f"{p}:answer-1", guard)
    other = Guard(f"{p}:nonce", "body-2", 30)
    refused = await cache.take_lease(f"{p}:lease-2", "t3", 30, f"{p}:answer-2", other)

    assert first == Lease(taken=True)
    assert again == Lease()  # the same body: the guard lets it through, the lease is held
    assert refused == Lease(refused=True)
    assert await cache.get(f"{p}:nonce") == "body-1"
    assert await cache.get(f"{p}:lease-2") is None  # nothing taken for a refused guard


async def test_the_guard_is_kept_for_its_own_ttl(cache):
    p = cache.keys.prefix
    await cache.take_lease(f"{p}:lease", "t1", 30, f"{p}:answer", Guard(f"{p}:g", "a", SHORT))
    await asyncio.sleep(PAST_SHORT)
    found = await cache.take_lease(f"{p}:lease-2", "t2", 30, f"{p}:a2", Guard(f"{p}:g", "b", 30))
    assert found == Lease(taken=True)


async def test_answer_and_release_stores_and_releases_only_the_holders_lease(cache):
    p = cache.keys.prefix
    await cache.take_lease(f"{p}:lease", "t1", 30, f"{p}:answer")

    await cache.answer_and_release(f"{p}:answer", "early", 30, f"{p}:lease", "t-other")
    assert await cache.get(f"{p}:lease") == "t1"
    await cache.answer_and_release(f"{p}:answer", "done", SHORT, f"{p}:lease", "t1")

    assert await cache.get(f"{p}:lease") is None
    assert await cache.take_lease(f"{p}:lease", "t2", 30, f"{p}:answer") == Lease(answer="done")
    await asyncio.sleep(PAST_SHORT)
    assert await cache.get(f"{p}:answer") is None


async def test_the_lease_scripts_run_again_after_redis_forgot_them(cache):
    if isinstance(cache, RedisCache):
        for script in (cache._take, cache._answer, cache._extend):
            script.sha = "0" * 40  # as after a Redis restart: EVALSHA answers NOSCRIPT
    p = cache.keys.prefix

    assert (await cache.take_lease(f"{p}:lease", "t1", 30, f"{p}:answer")).taken
    assert await cache.extend(f"{p}:lease", "t1", 30) is True
    await cache.answer_and_release(f"{p}:answer", "done", 30, f"{p}:lease", "t1")
    assert await cache.get(f"{p}:answer") == "done"


async def test_lease_steps_and_counters_asked_for_together_each_get_their_own_answer(cache):
    p = cache.keys.prefix
    if isinstance(cache, RedisCache):  # one pipeline, with a script Redis has forgotten
        cache._take.sha = "0" * 40
    await cache.take_lease(f"{p}:lease-0", "t0", 30, f"{p}:answer-0")

    found = await asyncio.gather(
        cache.answer_and_release(f"{p}:answer-0", "zero", 30, f"{p}:lease-0", "t0"),
        *(cache.take_lease(f"{p}:lease-{i}", f"t{i}", 30, f"{p}:answer-{i}") for i in (1, 2)),
        cache.take_lease(f"{p}:lease-1", "t9", 30, f"{p}:answer-1"),
        cache.incr(f"{p}:n", 30),
        cache.incr(f"{p}:n", 30),
    )

    assert found == [None, Lease(taken=True), Lease(taken=True), Lease(), 1, 2]
    assert await cache.take_lease(f"{p}:lease-0", "t", 30, f"{p}:answer-0") == Lease(answer="zero")


class _ForgottenAndFailingToLoad:
    """A script Redis has forgotten (NOSCRIPT) whose reload then fails (a blip)."""

    sha = "0" * 40

    async def __call__(self, keys, args):
        raise ConnectionError("a blip while loading it again")


async def test_a_script_that_fails_to_load_again_fails_only_its_own_call_of_the_batch(cache):
    if not isinstance(cache, RedisCache):
        pytest.skip("Redis only")
    p = cache.keys.prefix
    cache._take = _ForgottenAndFailingToLoad()

    found = await asyncio.gather(
        cache.incr(f"{p}:n", 30),
        cache.take_lease(f"{p}:lease", "t", 30, f"{p}:answer"),
        cache.incr(f"{p}:n", 30),
        return_exceptions=True,
    )

    assert found[0] == 1 and found[2] == 2  # they ran, and their callers are told so
    assert isinstance(found[1], ConnectionError)
    assert await cache.get(f"{p}:n") == "2"


async def test_lock_gives_mutual_exclusion_to_many_tasks(cache):
    counter = {"value": 0, "inside": 0, "most_inside": 0}

    async def bump() -> None:
        async with cache.lock("counter", ttl=10, wait=10):
            counter["inside"] += 1
            counter["most_inside"] = max(counter["most_inside"], counter["inside"])
            seen = counter["value"]
            await asyncio.sleep(0.001)  # a read-sleep-write race without the lock
            counter["value"] = seen + 1
            counter["inside"] -= 1

    await asyncio.gather(*(bump() for _ in range(25)))
    assert counter["value"] == 25
    assert counter["most_inside"] == 1
    assert await cache.get(cache.keys.lock("counter")) is None  # released at the end


async def test_lock_is_released_when_the_body_raises(cache):
    with pytest.raises(RuntimeError):
        async with cache.lock("boom", ttl=10, wait=1):
            raise RuntimeError("inside")
    async with cache.lock("boom", ttl=10, wait=0.05):
        pass


async def test_lock_held_elsewhere_times_out(cache):
    async with cache.lock("held", ttl=10, wait=1):
        with pytest.raises(LockTimeout):
            async with cache.lock("held", ttl=10, wait=0.05):
                pytest.fail("entered a lock that is held")
    async with cache.lock("held", ttl=10, wait=0.05):  # free again once released
        pass


async def test_lock_of_a_crashed_holder_frees_itself_after_its_ttl(cache):
    await cache.set_if_absent(cache.keys.lock("stale"), "dead-holder", ttl=SHORT)
    async with cache.lock("stale", ttl=10, wait=2):
        assert await cache.get(cache.keys.lock("stale")) not in (None, "dead-holder")


async def test_lock_cannot_be_released_by_a_non_owner(cache):
    key = cache.keys.lock("mine")
    async with cache.lock("mine", ttl=10, wait=1):
        token = await cache.get(key)
        assert token
        await cache.compare_and_delete(key, "not-" + token)
        assert await cache.get(key) == token
        with pytest.raises(LockTimeout):
            async with cache.lock("mine", ttl=10, wait=0.05):
                pass
    assert await cache.get(key) is None


async def test_lock_expired_and_retaken_is_not_released_by_the_first_holder(cache):
    key = cache.keys.lock("slow")
    async with cache.lock("slow", ttl=SHORT, wait=1):
        await asyncio.sleep(PAST_SHORT)  # our lock lapsed; someone else takes it
        assert await cache.set_if_absent(key, "second-holder", ttl=30)
    assert await cache.get(key) == "second-holder"


async def test_ping_answers(cache):
    assert await cache.ping() is None


async def test_keys_are_namespaced_by_prefix(cache):
    keys = cache.keys
    assert keys.lock("x").startswith(f"{keys.prefix}:")
    assert keys.flood(7, 3).startswith(f"{keys.prefix}:")
    assert keys.flood(7, 3) != keys.flood(7, 4) != keys.flood(8, 4)
    assert Keys(prefix="a").lock("x") != Keys(prefix="b").lock("x")


def test_make_cache_picks_memory_without_a_redis_url():
    assert isinstance(make_cache(None), MemoryCache)


async def test_make_cache_picks_redis_with_a_url():
    made = make_cache("redis://127.0.0.1:6379/15")
    try:
        assert isinstance(made, RedisCache)
    finally:
        await made.close()


async def test_a_redis_connection_closed_by_the_server_is_opened_afresh(cache):
    if not isinstance(cache, RedisCache):
        pytest.skip("Redis only")
    key = f"{cache.keys.prefix}:k"
    await cache.set(key, "v", ttl=30)
    killer = make_cache(REDIS_URL)
    assert isinstance(killer, RedisCache)
    try:
        await killer.redis.client_kill_filter(_id=await cache.redis.client_id())
    finally:
        await killer.close()
    await asyncio.sleep(0.05)  # the event loop sees the close

    assert await cache.get(key) == "v"


async def test_a_redis_connection_holding_unread_data_is_not_used(cache):
    if not isinstance(cache, RedisCache):
        pytest.skip("Redis only")
    key = f"{cache.keys.prefix}:k"
    await cache.set(key, "v", ttl=30)
    (connection,) = cache.redis.connection_pool._available_connections
    connection._reader.feed_data(b"$5\r\nstale\r\n")  # a reply nobody read

    assert await cache.get(key) == "v"
    assert await cache.get(key) == "v"


async def test_a_reply_hiredis_holds_unread_is_not_handed_to_the_next_command(cache):
    if not isinstance(cache, RedisCache):
        pytest.skip("Redis only")
    key = f"{cache.keys.prefix}:k"
    await cache.set(key, "v", ttl=30)
    (connection,) = cache.redis.connection_pool._available_connections
    stale = b"$5\r\nstale\r\n"  # read off the socket into the parser, never parsed
    if not hasattr(getattr(connection._parser, "_reader", None), "has_data"):
        pytest.skip("hiredis not installed")
    connection._parser._reader.feed(stale)

    assert await cache.get(key) == "v"
    assert await cache.get(key) == "v"


async def test_a_reply_the_pure_python_parser_holds_unread_is_not_handed_on(cache):
    if not isinstance(cache, RedisCache):
        pytest.skip("Redis only")
    cache.redis.connection_pool.connection_kwargs["parser_class"] = _AsyncRESP2Parser
    key = f"{cache.keys.prefix}:k"
    await cache.set(key, "v", ttl=30)
    (connection,) = cache.redis.connection_pool._available_connections
    assert isinstance(connection._parser, _AsyncRESP2Parser)
    connection._parser._buffer = b"$5\r\nstale\r\n"  # read ahead, not handed out

    assert await cache.get(key) == "v"
    assert await cache.get(key) == "v"
