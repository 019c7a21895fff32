"""Flow control of the Telegram channel, without a network: the shared outbound rate limiter
(on the in-process cache and on Redis) and the per-member update processor."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from telegram import Update
from telegram.error import Forbidden, RetryAfter

from bot.channels import telegram_flow
from bot.channels.telegram_flow import PerMemberProcessor, SharedRateLimiter
from storage.cache import Cache, Keys, RedisCache
from tests.conftest import REDIS_URL, _redis_or_fail

# 1000 s after the epoch plus a bit: far from nothing in particular, a second starts at 1000.0.
T0 = 60 * 1000 + 0.25


class FakeTime:
    """Stands in for the `time` module inside telegram_flow, and for the limiter's sleep.

    With `auto` a sleep moves the time on at once (one sender at a time); without it a sleep
    waits until the test calls `advance` (several senders at once)."""

    def __init__(self, now: float = T0, *, auto: bool = True) -> None:
        self.now = now
        self.auto = auto
        self.sleeps: list[float] = []
        self._timers: list[tuple[float, asyncio.Future[None]]] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.auto:
            self.now += seconds
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._timers.append((self.now + seconds, woken))
        await woken

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for due, woken in list(self._timers):
            if due <= self.now + 1e-9:
                self._timers.remove((due, woken))
                woken.set_result(None)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(telegram_flow, "time", fake)
    return fake


async def until(ready: Callable[[], bool], timeout: float = 2.0) -> None:
    """Let the senders run (on Redis they wait for the network) until `ready()` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ready():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.002)


Send = Callable[..., Awaitable[Any]]


def sender(limiter: SharedRateLimiter, clock: FakeTime) -> tuple[Send, list[tuple[Any, float]]]:
    """`await send(chat_id)` goes through the limiter; `sent` records (chat, fake time)."""
    sent: list[tuple[Any, float]] = []

    async def send(chat_id: Any, endpoint: str = "sendMessage") -> Any:
        async def call() -> bool:
            sent.append((chat_id, clock.now))
            return True

        return await limiter.process_request(call, (), {}, endpoint, {"chat_id": chat_id}, None)

    return send, sent


def retry_after(seconds: int) -> RetryAfter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 warns about its own int retry_after
        return RetryAfter(seconds)


# -- the rate limiter -----------------------------------------------------------------------


async def test_thirty_sends_a_second_overall_then_the_next_waits(
    cache: Cache, fake_time: FakeTime
) -> None:
    send, sent = sender(SharedRateLimiter(cache, sleep=fake_time.sleep), fake_time)
    for chat in range(1, 31):
        await send(chat)
    assert fake_time.sleeps == []
    await send(31)
    assert fake_time.sleeps == [pytest.approx(0.75)]  # to the start of the next second
    assert sent[-1] == (31, pytest.approx(T0 + 0.75))
    assert len(sent) == 31


async def test_second_send_to_one_private_chat_waits_for_the_next_second(
    cache: Cache, fake_time: FakeTime
) -> None:
    send, sent = sender(SharedRateLimiter(cache, sleep=fake_time.sleep), fake_time)
    await send(42)
    await send(4242)  # another chat is not held up
    assert fake_time.sleeps == []
    await send(42)
    assert fake_time.sleeps == [pytest.approx(0.75)]
    assert [t - T0 for _, t in sent] == [0, 0, pytest.approx(0.75)]


async def test_twenty_sends_a_minute_to_one_group_then_the_next_waits(
    cache: Cache, fake_time: FakeTime
) -> None:
    send, sent = sender(SharedRateLimiter(cache, sleep=fake_time.sleep), fake_time)
    group = -1001234567890
    for _ in range(20):
        await send(group)
        fake_time.now += 1  # one a second: well within 30/s, but a group has 20 a minute
    assert fake_time.sleeps == []
    await send(group)
    # The 21st goes out when the next minute starts (T0 is 0.25 s into a minute).
    assert fake_time.sleeps == [pytest.approx(60 - 0.25 - 20)]
    assert sent[-1][1] == pytest.approx(60 * 1001)
    await send(-100999)  # another group has its own budget
    assert len(fake_time.sleeps) == 1


async def test_string_chat_ids_and_usernames(cache: Cache, fake_time: FakeTime) -> None:
    send, _ = sender(SharedRateLimiter(cache, sleep=fake_time.sleep), fake_time)
    await send("42")
    await send("@somechannel")  # not rate-keyed per chat, only counted overall
    await send("@somechannel")
    assert fake_time.sleeps == []
    await send(42)  # "42" and 42 are the same chat
    assert fake_time.sleeps == [pytest.approx(0.75)]


async def test_other_endpoints_are_not_rate_limited(cache: Cache, fake_time: FakeTime) -> None:
    send, sent = sender(SharedRateLimiter(cache, sleep=fake_time.sleep), fake_time)
    for _ in range(40):
        await send(None, "answerCallbackQuery")
        await send(None, "getUpdates")
    assert fake_time.sleeps == [] and len(sent) == 80


async def test_a_send_held_for_its_chat_leaves_the_overall_budget_to_others(
    cache: Cache, fake_time: FakeTime
) -> None:
    fake_time.auto = False
    send, sent = sender(SharedRateLimiter(cache, sleep=fake_time.sleep), fake_time)
    await send(42)
    held = asyncio.create_task(send(42))  # Ann's second reply this second: held for her chat
    await until(lambda: len(fake_time.sleeps) == 1)
    others = [asyncio.create_task(send(chat)) for chat in range(100, 129)]
    await until(lambda: len(sent) == 30 or len(fake_time.sleeps) > 1)
    # 1 + 29 sends this second: all fit in the 30/s, Ann's held one did not use a slot.
    assert fake_time.sleeps == [pytest.approx(0.75)]
    assert sorted(chat for chat, _ in sent) == [42, *range(100, 129)]
    fake_time.advance(0.75)
    await asyncio.wait_for(asyncio.gather(held, *others), 2)
    assert sent[-1] == (42, pytest.approx(T0 + 0.75))


async def test_a_busy_second_does_not_drain_a_groups_minute(
    cache: Cache, fake_time: FakeTime
) -> None:
    fake_time.auto = False
    send, sent = sender(SharedRateLimiter(cache, sleep=fake_time.sleep), fake_time)
    group = -100777
    for _ in range(19):
        await send(group)
        fake_time.now += 0.01
    for chat in range(200, 211):  # the rest of this second's 30
        await send(chat)
    held = asyncio.create_task(send(group))  # the group's 20th: held for the overall budget
    await until(lambda: len(fake_time.sleeps) == 1)
    fake_time.advance(fake_time.sleeps[0])
    await asyncio.wait_for(held, 2)
    assert len(fake_time.sleeps) == 1  # sent in the next second, its group slot still there
    assert sent[-1][0] == group


async def test_two_processes_share_the_budget_through_redis(fake_time: FakeTime) -> None:
    """Two limiters on two Redis connections (as two `memberbot serve` processes have)."""
    await _redis_or_fail()
    keys = Keys(prefix=f"mbtest:{uuid.uuid4().hex}")
    first, second = RedisCache(REDIS_URL, keys), RedisCache(REDIS_URL, keys)
    try:
        send_a, sent_a = sender(SharedRateLimiter(first, sleep=fake_time.sleep), fake_time)
        send_b, sent_b = sender(SharedRateLimiter(second, sleep=fake_time.sleep), fake_time)
        for chat in range(1, 16):
            await send_a(chat)
            await send_b(chat + 100)
        assert fake_time.sleeps == []
        await send_b(999)  # the 31st send of this second, counted across both
        assert fake_time.sleeps == [pytest.approx(0.75)]
        await send_a(999)  # and one private chat's second send this second, from the other
        assert fake_time.sleeps == [pytest.approx(0.75), pytest.approx(1.0)]
        assert len(sent_a) + len(sent_b) == 32
    finally:
        await first.close()
        await second.close()


async def test_limiters_on_one_cache_share_it(cache: Cache, fake_time: FakeTime) -> None:
    send_a, _ = sender(SharedRateLimiter(cache, sleep=fake_time.sleep), fake_time)
    send_b, _ = sender(SharedRateLimiter(cache, sleep=fake_time.sleep), fake_time)
    await send_a(42)
    await send_b(42)
    assert fake_time.sleeps == [pytest.approx(0.75)]


@pytest.mark.parametrize("ptb_timedelta", [False, True], ids=["int", "timedelta"])
async def test_retry_after_is_waited_out_then_retried(
    cache: Cache, fake_time: FakeTime, monkeypatch: pytest.MonkeyPatch, ptb_timedelta: bool
) -> None:
    """PTB 22 gives retry_after as int seconds (deprecated) or, opted in, as a timedelta."""
    if ptb_timedelta:
        monkeypatch.setenv("PTB_TIMEDELTA", "1")
    limiter = SharedRateLimiter(cache, sleep=fake_time.sleep)
    attempts: list[float] = []

    async def flaky() -> str:
        attempts.append(fake_time.now)
        if len(attempts) < 3:
            raise retry_after(3)
        return "sent"

    result = await limiter.process_request(flaky, (), {}, "sendMessage", {"chat_id": 1}, None)
    assert result == "sent"
    assert fake_time.sleeps == [3.0, 3.0]
    assert [t - T0 for t in attempts] == [0, 3, 6]


async def test_retry_after_gives_up_after_max_retries(cache: Cache, fake_time: FakeTime) -> None:
    limiter = SharedRateLimiter(cache, max_retries=2, sleep=fake_time.sleep)
    attempts = 0

    async def always_flooded() -> None:
        nonlocal attempts
        attempts += 1
        raise retry_after(1)

    with pytest.raises(RetryAfter):
        await limiter.process_request(always_flooded, (), {}, "sendMessage", {"chat_id": 1}, None)
    assert attempts == 3 and fake_time.sleeps == [1.0, 1.0]


async def test_forbidden_is_not_retried(cache: Cache, fake_time: FakeTime) -> None:
    limiter = SharedRateLimiter(cache, sleep=fake_time.sleep)
    attempts = 0

    async def blocked() -> None:
        nonlocal attempts
        attempts += 1
        raise Forbidden("Forbidden: bot was blocked by the user")

    with pytest.raises(Forbidden):
        await limiter.process_request(blocked, (), {}, "sendMessage", {"chat_id": 1}, None)
    assert attempts == 1 and fake_time.sleeps == []


# -- the per-member update processor ----------------------------------------------------------


def update_from(user_id: int, update_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": user_id, "type": "private"},
                "from": {"id": user_id, "is_bot": False, "first_name": "U"},
                "text": "/help",
            },
        },
        None,
    )


class Trace:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Event] = {}

    def job(self, tag: str, *, held: bool = False) -> Awaitable[None]:
        self.started[tag] = asyncio.Event()
        if held:
            self.gates[tag] = asyncio.Event()

        async def run() -> None:
            self.events.append(("start", tag))
            self.started[tag].set()
            if tag in self.gates:
                await self.gates[tag].wait()
            await asyncio.sleep(0)
            self.events.append(("end", tag))

        return run()


@pytest.fixture
async def processor() -> AsyncIterator[PerMemberProcessor]:
    found = PerMemberProcessor()
    await found.initialize()
    yield found
    await found.shutdown()


async def test_one_members_updates_run_one_at_a_time_in_order(
    processor: PerMemberProcessor,
) -> None:
    trace = Trace()
    tasks = [
        asyncio.create_task(
            processor.process_update(update_from(1, 1), trace.job("a1", held=True))
        ),
        asyncio.create_task(processor.process_update(update_from(1, 2), trace.job("a2"))),
        asyncio.create_task(processor.process_update(update_from(1, 3), trace.job("a3"))),
    ]
    await asyncio.wait_for(trace.started["a1"].wait(), 2)
    for _ in range(5):
        await asyncio.sleep(0)
    assert trace.events == [("start", "a1")]
    trace.gates["a1"].set()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert trace.events == [
        ("start", "a1"),
        ("end", "a1"),
        ("start", "a2"),
        ("end", "a2"),
        ("start", "a3"),
        ("end", "a3"),
    ]


async def test_two_members_run_in_parallel(processor: PerMemberProcessor) -> None:
    trace = Trace()
    held = asyncio.create_task(
        processor.process_update(update_from(1, 1), trace.job("a1", held=True))
    )
    other = asyncio.create_task(processor.process_update(update_from(2, 2), trace.job("b1")))
    await asyncio.wait_for(other, 2)  # finishes while the first member's update is held
    assert trace.events[:3] == [("start", "a1"), ("start", "b1"), ("end", "b1")]
    trace.gates["a1"].set()
    await asyncio.wait_for(held, 2)


async def test_one_members_backlog_does_not_take_everyones_slots() -> None:
    """Updates waiting for their member's turn hold no concurrency slot: with room for two
    updates at a time, one member with four in a row still leaves room for another."""
    processor = PerMemberProcessor(max_concurrent_updates=2)
    trace = Trace()
    backlog = [
        asyncio.create_task(
            processor.process_update(update_from(1, i), trace.job(f"a{i}", held=i == 1))
        )
        for i in range(1, 5)
    ]
    await asyncio.wait_for(trace.started["a1"].wait(), 2)
    await asyncio.wait_for(processor.process_update(update_from(2, 9), trace.job("b1")), 2)
    assert ("end", "b1") in trace.events
    trace.gates["a1"].set()
    await asyncio.wait_for(asyncio.gather(*backlog), 2)
    assert [tag for kind, tag in trace.events if kind == "start" and tag[0] == "a"] == [
        "a1",
        "a2",
        "a3",
        "a4",
    ]


async def test_concurrency_is_bounded() -> None:
    processor = PerMemberProcessor(max_concurrent_updates=2)
    trace = Trace()
    tasks = [
        asyncio.create_task(
            processor.process_update(update_from(u, u), trace.job(f"u{u}", held=True))
        )
        for u in range(1, 4)
    ]
    await asyncio.wait_for(trace.started["u2"].wait(), 2)
    await asyncio.sleep(0.01)
    assert not trace.started["u3"].is_set()
    for gate in trace.gates.values():
        gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert trace.started["u3"].is_set()


async def test_a_failing_update_does_not_block_the_members_next(
    processor: PerMemberProcessor,
) -> None:
    async def boom() -> None:
        raise RuntimeError("handler failed")

    trace = Trace()
    first = asyncio.create_task(processor.process_update(update_from(1, 1), boom()))
    second = asyncio.create_task(processor.process_update(update_from(1, 2), trace.job("a2")))
    with pytest.raises(RuntimeError):
        await first
    await asyncio.wait_for(second, 2)
    assert trace.events == [("start", "a2"), ("end", "a2")]


async def test_locks_are_not_kept_for_members_who_went_quiet(
    processor: PerMemberProcessor,
) -> None:
    trace = Trace()
    await asyncio.gather(
        *(processor.process_update(update_from(u, u), trace.job(f"u{u}")) for u in range(50))
    )
    assert processor._locks == {} and processor._waiting == {}


async def test_updates_without_a_user_are_not_serialised(processor: PerMemberProcessor) -> None:
    trace = Trace()
    post = {"message_id": 1, "date": 0, "chat": {"id": -100, "type": "channel"}, "text": "x"}
    channel_post = Update.de_json({"update_id": 1, "channel_post": post}, None)
    assert channel_post.effective_user is None
    held = asyncio.create_task(processor.process_update(channel_post, trace.job("c1", held=True)))
    await asyncio.wait_for(trace.started["c1"].wait(), 2)
    await asyncio.wait_for(processor.process_update(channel_post, trace.job("c2")), 2)
    trace.gates["c1"].set()
    await held


async def test_sends_waiting_for_the_overall_budget_go_out_in_arrival_order(
    cache: Cache, fake_time: FakeTime
) -> None:
    class CountingLock(asyncio.Lock):
        queued = 0

        async def acquire(self) -> bool:
            self.queued += 1
            return await super().acquire()

    fake_time.auto = False
    limiter = SharedRateLimiter(cache, sleep=fake_time.sleep)
    limiter._turn = turn = CountingLock()
    send, sent = sender(limiter, fake_time)
    for chat in range(1, 31):
        await send(chat)  # this second's 30
    waiting = []
    for i in range(45):  # more than the next second's 30 too
        waiting.append(asyncio.create_task(send(1000 + i)))
        # They arrive one after another (on Redis a chat's own slot takes a round trip first).
        await until(lambda i=i: turn.queued == 31 + i)
    for _ in range(2):
        await until(lambda: len(fake_time._timers) == 1)  # only the head of the queue waits
        fake_time.advance(1.0)
    await asyncio.wait_for(asyncio.gather(*waiting), 2)

    assert [chat for chat, _ in sent[30:]] == [1000 + i for i in range(45)]
    assert [at for _, at in sent[30:60]] == [T0 + 1.0] * 30
    assert [at for _, at in sent[60:]] == [T0 + 2.0] * 15
