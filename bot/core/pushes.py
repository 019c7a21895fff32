"""The front of the durable outbox for everything that is not a job: handlers, channels, admin.

A push is a row written in the transaction of its cause (bot.jobs.pushes does the writing:
kinds, muting, quiet hours); the process's outbox sender sends it. `wake()` after the commit
tells that sender (in this process, or a worker through the queue) to look now.

A person whose app refused a push until they write again (WeChat's 48-hour window, or a
terminal member not in the shell) has it held; `arrived()` on their next message releases it,
so it goes out with or right after that answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Coroutine
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.i18n import Translator
from bot.core.messages import Reply
from storage import outbox
from storage.outbox import Target

if TYPE_CHECKING:
    from bot.core.context import Services
    from bot.jobs.outbox import OutboxSender

log = logging.getLogger("memberbot.pushes")

HELD = "1"  # the mark `held` sets; `maybe_held` counts it past 1
PROBE_TTL = 0.001  # seconds: `maybe_held`'s own counter when nothing is held
Render = Callable[[Translator], Reply]
Waker = Callable[[], None]
__all__ = ["Pushes", "Render", "Target", "Waker", "call_soon"]


class Pushes:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._wakers: list[Waker] = []
        self.sender: OutboxSender | None = None  # this process's, when it has one

    def on_wake(self, waker: Waker) -> None:
        """Whoever sends the outbox for this process (the embedded sender, a worker's queue)."""
        self._wakers.append(waker)

    def wake(self) -> None:
        """Pushes were committed: send them now rather than at the next poll."""
        for waker in self._wakers:
            waker()

    async def to_member(
        self,
        session: AsyncSession,
        member_id: int,
        kind: str,
        key: str,
        render: Render,
        *,
        channels: Collection[str] | None = None,
    ) -> int | None:
        """Queue a push to the member in the caller's transaction (see push_to_member)."""
        from bot.jobs.pushes import push_to_member

        return await push_to_member(
            session,
            self.services,
            member_id,
            kind,
            key,
            render,
            channels=channels,
        )

    async def to_chat(
        self, session: AsyncSession, target: Target, kind: str, key: str, reply: Reply
    ) -> int | None:
        """Queue a push to a chat in the caller's transaction (see push_to_chat)."""
        from bot.jobs.pushes import push_to_chat

        return await push_to_chat(
            session,
            self.services,
            target,
            kind,
            key,
            reply,
        )

    async def now(self, target: Target, kind: str, key: str, reply: Reply) -> int | None:
        """Queue a push in a transaction of its own and wake the sender (a WeChat answer that
        missed the 5-second mark: its cause committed already)."""
        async with self.services.db.transaction() as session:
            queued = await self.to_chat(session, target, kind, key, reply)
        self.wake()
        return queued

    async def held(self, channel: str, chat_id: str) -> None:
        """The sender held a push for this person: their next message releases it."""
        cache = self.services.cache
        # As long as the hold itself (then the push fails "hold-expired"), and a day more.
        ttl = (self.services.rules.outbox.hold_days + 1) * 86400.0
        await cache.set(cache.keys.outbox_held(channel, chat_id), HELD, ttl=ttl)

    async def maybe_held(self, channel: str, chat_id: str) -> bool:
        """False when nothing is held for this person (True: maybe, see `release`).

        A counter, not a read, so that it goes to the cache in the same round trip as the
        flood counter asked in the same turn of the event loop (storage.cache batches
        counters): on the mark `held` set (HELD) it counts past 1; else it starts a counter
        of its own at 1 that lives a millisecond (two messages of one person within it make
        one needless `release`)."""
        cache = self.services.cache
        return await cache.incr(cache.keys.outbox_held(channel, chat_id), PROBE_TTL) > 1

    async def release(self, channel: str, chat_id: str) -> int:
        """The person wrote: pushes held for them are due now (how many)."""
        cache = self.services.cache
        async with self.services.db.transaction() as session:
            released = await outbox.release_held(
                session, channel, chat_id, self.services.clock.now()
            )
        # Only once released: a failed release leaves the mark for the next message.
        await cache.delete(cache.keys.outbox_held(channel, chat_id))
        if released:
            self.wake()
        return released

    async def arrived(self, channel: str, chat_id: str) -> int:
        """The person wrote: pushes held for them are due now. One cache round trip per
        message when nothing is held (the mark is set only when a push is held)."""
        if not await self.maybe_held(channel, chat_id):
            return 0
        return await self.release(channel, chat_id)

    async def settle(self) -> int:
        """Send what is due from here, now (the terminal after each line, tests); returns
        how many pushes were handled. Without a sender in this process: nothing."""
        if self.sender is None:
            return 0
        return await self.sender.drain()


def call_soon(wake: Callable[[], Coroutine[Any, Any, None]]) -> Waker:
    """A synchronous waker from an async one (a worker's queue), fire and forget."""
    tasks: set[asyncio.Task[None]] = set()

    def waker() -> None:
        task = asyncio.get_running_loop().create_task(wake())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return waker
