"""`memberbot worker`: the scheduler and the outbox sender on arq (Redis), any number at once.

Each worker runs the outbox sender loop and an arq cron that ticks the scheduled jobs every
minute (storage.jobs claims keep each job once per period, with servers ticking too). The
queue carries only wake-ups: a server that queued a push enqueues `wake_outbox` and some
worker sends at once instead of at its next poll. The outbox table stays the truth; a lost
wake-up costs at most one poll period (outbox.poll_seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq import cron
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import func

from bot.jobs.env import JobEnv
from bot.jobs.schedule import tick

log = logging.getLogger("memberbot.worker")

WAKE = "wake_outbox"


def queue_name(prefix: str) -> str:
    """The arq queue of a deployment (its Redis key prefix, MEMBERBOT_REDIS_PREFIX)."""
    return f"{prefix}:queue"


QUEUE = queue_name("mb")  # the default prefix's

Close = Callable[[], Awaitable[None]]
Build = Callable[[], Awaitable[tuple[JobEnv, Close]]]


async def wake_outbox(ctx: dict[str, Any]) -> None:
    """The queue function: a push was queued somewhere, send what is due now."""
    ctx["env"].sender.wake()


async def tick_jobs(ctx: dict[str, Any]) -> dict[str, int]:
    """The cron function: run the scheduled jobs whose period is due."""
    return await tick(ctx["env"])


def worker_settings(build: Build, redis_url: str, *, queue: str = QUEUE) -> dict[str, Any]:
    """arq Worker keyword arguments; `build` assembles the services and senders at start-up
    (returning the env and how to close it), so importing this module connects to nothing."""

    async def startup(ctx: dict[str, Any]) -> None:
        env, close = await build()
        stop = asyncio.Event()
        ctx.update(env=env, close=close, stop=stop)
        ctx["sending"] = asyncio.create_task(env.sender.run(stop), name="outbox-sender")

    async def shutdown(ctx: dict[str, Any]) -> None:
        env: JobEnv = ctx["env"]
        ctx["stop"].set()
        sending: asyncio.Task[None] = ctx["sending"]
        bound = env.services.rules.outbox.shutdown_seconds
        done, _ = await asyncio.wait([sending], timeout=bound)
        if not done:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
        try:
            await env.sender.give_back()
        finally:
            await ctx["close"]()

    return {
        "functions": [func(wake_outbox, name=WAKE, keep_result=0, max_tries=1)],
        # arq's job keys are global to the Redis database: names carry the queue's.
        "cron_jobs": [
            cron(tick_jobs, name=f"{queue}:tick", second=0, run_at_startup=True, timeout=3600)
        ],
        "redis_settings": RedisSettings.from_dsn(redis_url),
        "queue_name": queue,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "keep_result": 0,
        "job_timeout": 3600,
        # arq keeps `<queue>:health-check` fresh this often: docker-compose.yml checks it.
        "health_check_interval": 60,
    }


class Waker:
    """What a server calls after committing a push, to wake a worker's sender."""

    def __init__(self, pool: ArqRedis, queue: str = QUEUE) -> None:
        self.pool = pool
        self.queue = queue

    @classmethod
    async def connect(cls, redis_url: str, queue: str = QUEUE) -> Waker:
        return cls(await create_pool(RedisSettings.from_dsn(redis_url)), queue)

    async def wake(self) -> None:
        """Best effort: a wake-up that cannot be queued only delays the push to a poll."""
        try:
            # One wake-up waiting at a time is enough: a fixed job id makes the rest no-ops.
            wake_id = f"{self.queue}:wake"
            await self.pool.enqueue_job(WAKE, _job_id=wake_id, _queue_name=self.queue)
        except Exception as exc:
            log.warning("outbox wake-up not queued error=%s", type(exc).__name__)

    async def close(self) -> None:
        await self.pool.aclose()
