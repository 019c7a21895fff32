"""The scheduler and the outbox sender inside `memberbot serve`: asyncio tasks, no Redis.

Several servers may each run one: the job claims (storage.jobs) and the outbox's leases keep
every job once per period and every push with one sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.jobs.env import JobEnv
from bot.jobs.schedule import tick

log = logging.getLogger("memberbot.jobs")


class Embedded:
    """`start()` at start-up, `stop()` at shutdown (bounded by outbox.shutdown_seconds)."""

    def __init__(self, env: JobEnv, *, tick_seconds: float = 30.0) -> None:
        self.env = env
        self.tick_seconds = tick_seconds
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """A push was queued here: send it now rather than at the next poll."""
        self.env.sender.wake()

    async def start(self) -> None:
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self.env.sender.run(self._stop), name="outbox-sender"),
            asyncio.create_task(self._ticking(), name="job-scheduler"),
        ]

    async def stop(self) -> None:
        """Stop claiming; give sends in flight the rules' time; hand back what is left."""
        self._stop.set()
        if not self._tasks:
            return
        bound = self.env.services.rules.outbox.shutdown_seconds
        _, late = await asyncio.wait(self._tasks, timeout=bound)
        for task in late:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        given = await self.env.sender.give_back()
        if given:
            log.info("outbox pushes handed back at shutdown count=%d", given)

    async def _ticking(self) -> None:
        while not self._stop.is_set():
            try:
                await tick(self.env)
            except Exception:
                log.exception("scheduler tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.tick_seconds)
