"""The outbox sender when a claim or a drain is cut short, and how far it runs ahead of its
marks: nothing claimed is skipped for good, every send slot is used, sent-but-unmarked pushes
stay within the three batches claimed."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bot.core.ports import Senders
from bot.jobs.env import JobEnv
from handlers.nudges import TEXTS
from storage import nudges, outbox
from tests.jobs.conftest import FakeApp, pushes
from tests.jobs.test_outbox_sender import override, queue


class CountingApp(FakeApp):
    """Each send takes a few loop turns; the most sends under way at once is kept."""

    def __init__(self, channel):
        super().__init__(channel)
        self.gate = asyncio.Event()
        self.under_way = self.most = 0

    async def send(self, chat_id, reply):
        self.under_way += 1
        self.most = max(self.most, self.under_way)
        if reply.text == "first":
            await self.gate.wait()
        else:
            await asyncio.sleep(0.01)
        self.under_way -= 1
        return await super().send(chat_id, reply)


async def test_a_burst_after_a_lone_push_is_sent_with_all_the_slots(core, new_member):
    """A drain whose first batch started one worker: a later claim, shorter than a batch, for
    many chats gets the pool's other workers too, not that one idle worker alone."""
    app = CountingApp("telegram")
    senders = Senders()
    senders.add(app)
    env = JobEnv(core.services, senders, TEXTS)
    override(env, "outbox", concurrency=4, batch=100)
    await queue(env, await new_member("telegram", "lone"), key="lone", text="first")
    draining = asyncio.create_task(env.sender.drain())
    async with asyncio.timeout(5):
        while app.under_way == 0:
            await asyncio.sleep(0.01)
    for i in range(12):  # a burst for 12 chats arrives meanwhile
        await queue(env, await new_member("telegram", f"c{i}"), key=f"c{i}", text=f"c{i}")
    app.most = 0
    app.gate.set()
    assert await draining == 13
    assert app.most == 4


async def test_a_push_claimed_by_a_failed_claim_is_sent_after_its_lease(
    core, env, new_member, telegram, clock, monkeypatch
):
    """claim_due leased the row, then the mute lookup failed: the row is given back (or
    forgotten), not skipped by every later claim of this sender."""
    await queue(env, await new_member("telegram", "111"), kind="flashsale-push", key="m")
    real = nudges.muted_among
    calls = 0

    async def flaky(session, ids):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database blip")
        return await real(session, ids)

    monkeypatch.setattr(nudges, "muted_among", flaky)
    with pytest.raises(ConnectionError):
        await env.sender.drain()
    clock.advance(seconds=env.services.rules.outbox.lease_seconds + 1)
    for _ in range(3):
        await env.sender.drain()
        clock.advance(seconds=600)
    assert [p.state for p in await pushes(core)] == ["sent"]
    assert not env.sender.busy


async def test_sent_but_unmarked_pushes_stay_within_three_batches(
    core, env, new_member, telegram, monkeypatch
):
    """README: what a crash can repeat is 'never more than the process had claimed (three
    batches)'. A slow mark statement slows the claims: sends stop at three batches."""
    override(env, "outbox", concurrency=2, batch=2)
    for i in range(40):
        await queue(env, await new_member("telegram", f"c{i}"), key=f"c{i}", text=f"c{i}")
    gate, written = asyncio.Event(), outbox.mark_sent_group

    async def slow_mark(*args):
        await gate.wait()
        return await written(*args)

    monkeypatch.setattr(outbox, "mark_sent_group", slow_mark)
    draining = asyncio.create_task(env.sender.drain())
    for _ in range(300):
        await asyncio.sleep(0.005)
    unmarked = len(telegram.calls)
    gate.set()
    await draining
    assert unmarked <= 6


async def test_a_drain_aborted_mid_send_leaves_no_push_behind_for_good(
    core, env, new_member, telegram, clock, monkeypatch
):
    """run(): the depth refresh fails while a batch is being sent; the drain is aborted, its
    workers cancelled; what they had is given back and sent by a later drain."""
    override(env, "outbox", batch=2, concurrency=2)
    for i in range(4):
        await queue(env, await new_member("telegram", f"c{i}"), key=f"c{i}", text=f"c{i}")
    gate, real_send = asyncio.Event(), telegram.send

    async def gated(chat_id, reply):
        await gate.wait()
        return await real_send(chat_id, reply)

    telegram.send = gated
    calls = 0

    async def measure():
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("database blip")

    monkeypatch.setattr(env.sender, "measure", measure)
    stop = asyncio.Event()
    running = asyncio.create_task(env.sender.run(stop))
    async with asyncio.timeout(5):
        while calls < 2:
            await asyncio.sleep(0.01)
    gate.set()
    for _ in range(5):
        clock.advance(seconds=env.services.rules.outbox.lease_seconds + 1)
        env.sender.wake()
        await asyncio.sleep(0.2)
    stop.set()
    env.sender.wake()
    await running
    states = [p.state for p in await pushes(core)]
    assert states == ["sent"] * 4, (states, sorted(env.sender._in_flight))


async def test_a_push_of_a_drain_cancelled_without_give_back_is_sent_two_leases_later(
    core, env, new_member, telegram, clock
):
    """A drain cancelled mid-send and no give_back (not a shutdown): what it held is skipped
    for two leases at most, then forgotten here and claimed again."""
    await queue(env, await new_member("telegram", "111"), key="m")
    gate, real_send = asyncio.Event(), telegram.send

    async def gated(chat_id, reply):
        await gate.wait()
        return await real_send(chat_id, reply)

    telegram.send = gated
    draining = asyncio.create_task(env.sender.drain())
    async with asyncio.timeout(5):
        while not env.sender._in_flight:
            await asyncio.sleep(0.01)
    draining.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await draining
    telegram.send = real_send
    lease = env.services.rules.outbox.lease_seconds
    clock.advance(seconds=lease + 1)
    assert await env.sender.drain() == 0  # still skipped: it might be under way
    clock.advance(seconds=lease)
    assert await env.sender.drain() == 1
    assert [p.state for p in await pushes(core)] == ["sent"]
    assert not env.sender.busy
