"""Flow control for the Telegram bot: per-member ordering of updates and outbound rate limits.

PTB's own AIORateLimiter counts per process; this one counts in the core's cache, so with
Redis several processes together stay under Telegram's limits.
"""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from telegram import Update, User
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter, BaseUpdateProcessor

from bot.core.ports import Cache

log = logging.getLogger("memberbot.telegram")

GLOBAL_PER_SECOND = 30
PRIVATE_PER_SECOND = 1
GROUP_PER_MINUTE = 20
SENDING = {
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "sendMediaGroup",
    "editMessageText",
    "copyMessage",
    "forwardMessage",
}
MAX_WAIT = 90.0
UNBOUNDED = 1 << 30


class PerMemberProcessor(BaseUpdateProcessor):
    """Updates of one person run one at a time, in order; different people run in parallel,
    at most `max_concurrent_updates` at once.

    PTB takes its concurrency slot before `do_process_update`, that is before the member's
    turn: a member with a backlog (quick taps, a script) would hold slots while merely
    waiting, and with enough of them stall everybody else. So PTB's own bound is lifted and
    the slot is taken here, once the member's turn has come.
    """

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(UNBOUNDED)
        self._slots = asyncio.Semaphore(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        user = _person(update)
        if user is None:
            async with self._slots:
                await coroutine
            return
        lock = self._locks.setdefault(user.id, asyncio.Lock())
        self._waiting[user.id] = self._waiting.get(user.id, 0) + 1
        try:
            async with lock, self._slots:
                await coroutine
        finally:
            self._waiting[user.id] -= 1
            if not self._waiting[user.id]:
                del self._waiting[user.id], self._locks[user.id]

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None


class SharedRateLimiter(BaseRateLimiter[int]):
    """Fixed-window counters in the cache: 30 sends/s in all, 1/s per private chat,
    20/min per group; Telegram's RetryAfter is waited out and the call retried."""

    def __init__(
        self,
        cache: Cache,
        *,
        max_retries: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.cache = cache
        self.max_retries = max_retries
        self._turn = asyncio.Lock()
        self._sleep = sleep

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def _slot(self, name: str, limit: int, window: int) -> tuple[float, int]:
        """(0, bucket) when a send fits in the current window, else (seconds to wait, bucket)."""
        bucket = int(time.time() // window)
        used = await self.cache.incr(self.cache.keys.rate(f"telegram:{name}", bucket), window * 2)
        wait = 0.0 if used <= limit else max((bucket + 1) * window - time.time(), 0.001)
        return wait, bucket

    async def _wait_for(self, name: str, limit: int, window: int, deadline: float) -> int:
        """Wait until a slot of the window is had; returns the window's bucket number."""
        while True:
            wait, bucket = await self._slot(name, limit, window)
            if not wait:
                return bucket
            if time.monotonic() >= deadline:
                log.warning("telegram rate limit wait gave up window=%s", name.split(":")[0])
                return bucket
            await self._sleep(wait)

    async def _acquire(self, chat_id: object) -> None:
        """Wait for the chat's own window, then for a slot of the overall budget.

        The overall budget is awaited in arrival order within the process: without the queue,
        dozens of waiting sends race for each new second and an unlucky one can lose for many
        seconds in a row. A private chat's slot is taken first (a slot taken and then refused
        elsewhere cannot be given back); if the wait for the overall budget carried the send
        into a later second, the send is counted in the chat's window of that second too.
        """
        deadline = time.monotonic() + MAX_WAIT
        chat = chat_number(chat_id)
        if chat is not None and chat < 0:
            await self._wait_for(f"group:{chat}", GROUP_PER_MINUTE, 60, deadline)
            async with self._turn:
                await self._wait_for("all", GLOBAL_PER_SECOND, 1, deadline)
            return
        second = None
        if chat is not None:
            second = await self._wait_for(f"chat:{chat}", PRIVATE_PER_SECOND, 1, deadline)
        async with self._turn:
            now = await self._wait_for("all", GLOBAL_PER_SECOND, 1, deadline)
        if second is not None and now != second:
            # Counted in the second it really goes out in, so the chat's next send waits;
            # waiting again here would cost a second slot of the overall budget.
            await self._slot(f"chat:{chat}", PRIVATE_PER_SECOND, 1)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        if endpoint in SENDING:
            await self._acquire(data.get("chat_id"))
        for attempt in range(self.max_retries + 1):
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == self.max_retries:
                    raise
                delay = retry_seconds(exc)
                log.info("telegram flood control endpoint=%s retry_after=%.1f", endpoint, delay)
                await self._sleep(delay)
        raise AssertionError("unreachable")


def _person(update: object) -> User | None:
    """Whose updates stay in order: for a group member change the member (the performer
    may be an admin or the bot itself), otherwise the sender."""
    if not isinstance(update, Update):
        return None
    if update.chat_member is not None:
        return update.chat_member.new_chat_member.user
    return update.effective_user


def chat_number(chat_id: object) -> int | None:
    """Chat and user ids are whole numbers (negative for groups); "@channel" usernames and
    anything else are not."""
    text = str(chat_id).strip() if chat_id is not None else ""
    digits = text[1:] if text.startswith("-") else text
    return int(text) if digits.isascii() and digits.isdigit() and len(digits) <= 20 else None


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        # PTB 22 warns that retry_after will become a timedelta; either form is handled here.
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
