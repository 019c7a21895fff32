"""`memberbot worker` on arq and a real Redis: it sends what is queued and ticks the jobs."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from arq.worker import Worker
from sqlalchemy import select

from bot.core.messages import Reply
from bot.jobs.pushes import push_to_member
from bot.jobs.worker import WAKE, Waker, worker_settings
from storage import jobs
from storage.models import OutboxPush
from tests.conftest import REDIS_URL, _redis_or_fail


@pytest.fixture
async def queue():
    """A queue name of this test's own; its keys are removed afterwards."""
    await _redis_or_fail()
    name = f"mbtest:{uuid.uuid4().hex}:queue"
    yield name
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"*{name}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def state_of(core, push_id):
    async with core.services.db.reader() as session:
        stmt = select(OutboxPush.state).where(OutboxPush.id == push_id)
        return (await session.execute(stmt)).scalar_one()


async def test_a_worker_sends_the_outbox_and_ticks_the_jobs(core, env, new_member, telegram, queue):
    member_id = await new_member("telegram", "111")
    async with core.services.db.transaction() as session:
        push_id = await push_to_member(
            session, core.services, member_id, "tier-change", "k1", lambda t: Reply("hi")
        )
    waker = await Waker.connect(REDIS_URL, queue)
    await waker.wake()
    await waker.wake()  # one wake-up waiting is enough: the second is dropped
    await waker.close()

    async def build():
        async def close():
            return None

        return env, close

    settings = worker_settings(build, REDIS_URL, queue=queue)
    worker = Worker(**settings, burst=True, handle_signals=False, poll_delay=0.05)
    try:
        await worker.main()
        for _ in range(250):  # the sender loop runs beside arq's own loop
            if await state_of(core, push_id) == "sent":
                break
            await asyncio.sleep(0.02)
    finally:
        await worker.close()

    assert await state_of(core, push_id) == "sent"
    assert telegram.calls[0].chat_id == "111"
    # One wake-up (the second was dropped) and the tick at start-up; a run that crosses a
    # minute boundary ticks once more (arq's cron fires at second 0).
    assert worker.jobs_complete in (2, 3)
    async with core.services.db.reader() as session:
        ran = {run.job for run in await jobs.recent(session, limit=50)}
    assert ran == {
        "expiry",
        "reminders",
        "birthdays",
        "dormant",
        "tier-review",
        "deadlines",
        "flashsales",
        "stats",
    }


def test_worker_settings_name_the_wake_up_function_and_one_cron():
    async def build():
        raise AssertionError("not called before the worker starts")

    settings = worker_settings(build, "redis://127.0.0.1:6379/0", queue="q")
    assert [f.name for f in settings["functions"]] == [WAKE]
    assert [c.name for c in settings["cron_jobs"]] == ["q:tick"]
    assert settings["queue_name"] == "q"


async def test_the_redis_prefix_names_the_cache_keys_and_the_queue(tmp_path):
    from bot.app import build_core
    from bot.jobs.worker import QUEUE, queue_name
    from bot.settings import Settings

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db", redis_prefix="shop2")
    core = await build_core(settings)
    try:
        assert core.services.cache.keys.flood(7, 1) == "shop2:flood:7:1"
    finally:
        await core.close()
    assert queue_name("shop2") == "shop2:queue"
    assert QUEUE == "mb:queue"  # the default prefix's
