"""The outbox sender: takes due pushes, sends them through the apps' senders, marks each.

Each push is marked right after its app answered (bot.jobs.marks: the marks of that moment
share one statement), before its chat's next push, so a crash can repeat at most the pushes in
flight and those sent whose mark was not written yet (at least once, never lost; README, "At
least once"). What the app answered
decides what follows (bot.core.ports.Delivery): sent; wait `retry_after` (not counted as an
attempt); hold until the person writes again (WeChat's window); final (failed, the account
marked unreachable); anything else retried with exponential backoff and jitter until the
rules' maximum of attempts. One chat's pushes go in order; chats go in parallel, bounded by
the rules' send slots (WeChat's apart: no overall rate caps it), each slot taken for a send
only. Due pushes are claimed a batch at a time (storage.outbox.claim_due: one statement), the
next batch while the last ones are still being sent.
A pusher may also have `send_notice` (NoticePusher: WeChat's template messages for the kinds
the rules give a template); the outbox then sends a person's pushes through it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections import deque
from datetime import datetime, timedelta
from typing import Any, Protocol, cast, runtime_checkable

from bot.core.context import Services
from bot.core.messages import Reply
from bot.core.ports import Delivery, Senders
from bot.jobs.marks import SentMarks
from bot.jobs.metrics import outbox_metrics
from bot.jobs.quiet import quiet_until
from bot.settings import OutboxRules, Rules
from storage import identities, nudges, outbox
from storage.outbox import Push

log = logging.getLogger("memberbot.outbox")

METRICS_EVERY = 15.0  # seconds between the sender's reads of the outbox's depth
NOT_THERE = "channel-off"  # no sender for the app here: says nothing about the person
MUTED = "muted"  # the member sent /mute after a marketing push was queued
HOLDS_EVERY = timedelta(minutes=1)  # how often held pushes past their limit are failed
ORIGINAL_WAIT = timedelta(seconds=5)  # an edit whose message is not sent yet looks again
# Failures that say nothing about the person: their account stays reachable.
NOT_ABOUT_THEM = frozenset({NOT_THERE, MUTED, "invalid-template"})


@runtime_checkable
class NoticePusher(Protocol):
    """A pusher with a way of its own for some kinds of push (WeChat's template messages,
    free of its 48-hour window). Optional: the outbox uses it when a pusher has it; the
    pusher picks by kind and rules, and sends as `send` would otherwise."""

    channel: str

    async def send_notice(
        self, chat_id: str, kind: str, reply: Reply, rules: Rules
    ) -> Delivery: ...


@functools.cache
def _has_notices(kind: type) -> bool:
    """Whether a pusher's class has `send_notice`, asked once per class: an isinstance of a
    runtime-checkable Protocol inspects every member on each call (tens of microseconds)."""
    return callable(getattr(kind, "send_notice", None))


def backoff(attempts: int, rules: OutboxRules, rng: random.Random) -> float:
    """Seconds before the next try after `attempts` failed ones: doubling from the base up to
    the cap, half of it random so that pushes failed together do not return together."""
    doubled: float = rules.backoff_seconds * 2.0 ** max(attempts - 1, 0)
    delay = min(rules.backoff_cap_seconds, doubled)
    return delay / 2 + rng.uniform(0, delay / 2)


class OutboxSender:
    """Sends what is due on the channels `senders` can serve; `run` until stopped."""

    def __init__(
        self, services: Services, senders: Senders, *, rng: random.Random | None = None
    ) -> None:
        self.services = services
        self.senders = senders
        self.rng = rng or random.Random()
        self.metrics = outbox_metrics(services.metrics)
        self._sent: dict[tuple[str, str], Any] = {}  # the sent counter's child per label pair
        self.marks = SentMarks(services.db)
        self._wake = asyncio.Event()
        self._in_flight: dict[int, Push] = {}
        # When each claimed push's lease runs out ((id, attempts) → time): a push still queued
        # then is not sent, as the next claim (here or elsewhere) takes it again.
        self._lease_ends: dict[tuple[int, int], datetime] = {}
        self._claiming = 0
        self._measured = -METRICS_EVERY
        self._holds_checked: datetime | None = None  # by the services' clock

    @property
    def rules(self) -> OutboxRules:
        return self.services.rules.outbox

    @property
    def channels(self) -> frozenset[str]:
        return frozenset(self.senders.pushers) | frozenset(self.senders.posters)

    @property
    def busy(self) -> bool:
        """Pushes claimed here are being sent."""
        return bool(self._in_flight) or self._claiming > 0

    def wake(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        self._wake.set()

    async def drain(self, max_batches: int = 1000) -> int:
        """Send until nothing is due (or `max_batches` claims); returns pushes handled.

        Pipelined: the next batch is claimed once fewer than two batches are left to start, so
        sends do not wait for a claim, and at most two are still unmarked (slow marks hold the
        claims back: sent-but-unmarked pushes stay within three batches). A chat's pushes go
        in claim order, one at a time, each marked before the next, however many batches they
        came in; at most
        `outbox.concurrency` pushes (WeChat: `outbox.wechat_concurrency`) are being sent at
        once (see _Drain)."""
        return await self._drain(max_batches, None)

    async def _drain(self, max_batches: int, stop: asyncio.Event | None) -> int:
        """drain; with `stop` (run): no claim once it is set, the depth gauges kept fresh."""
        run: _Drain | None = None
        try:
            async with asyncio.TaskGroup() as tasks:
                run = _Drain(self, stop, tasks)
                try:
                    await run.claiming(max_batches)
                finally:
                    run.close()
        except BaseExceptionGroup as group:  # only a claim's: a push's is logged where it fails
            if run is not None and isinstance(group, ExceptionGroup):
                # Aborted (the depth refresh failed, say): its workers were cancelled, what it
                # still held is given back now rather than skipped by this sender's claims.
                await self._hand_back(run.held(), "drain-aborted")
            raise group.exceptions[0] from None
        return run.claimed

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; between batches wait for a wake-up or the poll period."""
        while not stop.is_set():
            try:
                handled = await self._drain(1000, stop)
            except Exception:
                log.exception("outbox batch failed")
                handled = 0
            if handled:
                continue
            self._wake.clear()
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(
                waits, timeout=self.rules.poll_seconds, return_when="FIRST_COMPLETED"
            )
            for waiting in waits:
                waiting.cancel()

    async def measure(self) -> None:
        """Refresh the depth gauges now and then (a count over the whole table)."""
        if time.monotonic() - self._measured >= METRICS_EVERY:
            self._measured = time.monotonic()
            await self.metrics.refresh(self.services.db, self.services.clock.now())

    async def give_back(self) -> int:
        """Return pushes claimed but not marked (shutdown cut their send short): due now."""
        await self.marks.flushed()  # a push marked sent meanwhile is not given back
        left, self._in_flight = list(self._in_flight.values()), {}
        self._lease_ends.clear()
        now = self.services.clock.now()
        async with self.services.db.transaction() as session:
            for push in left:
                await outbox.retry(session, push, now, now, "interrupted", counts=False)
        return len(left)

    async def _hand_back(self, pushes: list[Push], reason: str) -> None:
        """Give back pushes claimed here that this sender will not send (a claim or a drain
        cut short by an error): due now, the try not counted; forgotten here in any case, so
        that no later claim skips them (if the statement fails, their lease brings them back).
        Unlike `give_back`, touches only `pushes`: other drains' rows are being sent."""
        await self.marks.flushed()  # a push marked sent meanwhile is not given back
        mine = [push for push in pushes if self._in_flight.get(push.id) is push]
        for push in mine:
            self._finished(push)
        if not mine:
            return
        now = self.services.clock.now()
        try:
            async with self.services.db.transaction() as session:
                for push in mine:
                    await outbox.retry(session, push, now, now, reason, counts=False)
        except Exception:
            log.exception("outbox pushes not given back, due after their lease count=%d", len(mine))

    def _forget_stale(self, now: datetime) -> None:
        """Drop what a claim made more than two leases ago left here (a drain cancelled
        without `give_back`): no send of ours lasts that long, and a claim skipping them would
        leave them pending until a restart."""
        stale = now - timedelta(seconds=self.rules.lease_seconds * 5 / 4)  # ends: 3/4 lease
        for push in list(self._in_flight.values()):
            ends = self._lease_ends.get((push.id, push.attempts))
            if ends is None or ends <= stale:
                self._finished(push)
        for key, ends in list(self._lease_ends.items()):
            if ends <= stale:
                del self._lease_ends[key]

    async def claim(self) -> tuple[list[Push], set[int]]:
        """Lease one batch of due pushes; with it, which of their members muted marketing."""
        services = self.services
        now = services.clock.now()
        self._claiming += 1  # busy from the claim on: its rows are leased before they are here
        try:
            holds = self._holds_checked is None or now - self._holds_checked >= HOLDS_EVERY
            if holds:
                self._forget_stale(now)
            batch = await outbox.claim_due(
                services.db,
                now,
                lease=timedelta(seconds=self.rules.lease_seconds),
                limit=self.rules.batch,
                channels=self.channels,
                skip=self._in_flight.keys(),
                expire_holds=holds,
            )
            self._in_flight.update((push.id, push) for push in batch)
            # A send may take a while: a push is only started with a quarter of its lease left.
            ends = now + timedelta(seconds=self.rules.lease_seconds * 3 / 4)
            self._lease_ends.update(((push.id, push.attempts), ends) for push in batch)
            if holds:
                self._holds_checked = now
        finally:
            self._claiming -= 1
        marketing = {p.member_id for p in batch if p.marketing and p.member_id is not None}
        if not marketing:
            return batch, set()
        try:
            async with services.db.reader() as session:
                return batch, await nudges.muted_among(session, marketing)
        except Exception:
            # Only this batch goes back: `give_back` would also reset rows being sent now.
            await self._hand_back(batch, "claim-failed")
            raise

    def _finished(self, push: Push) -> None:
        """`push` was handled (sent and marked, put off, or failed): no longer ours to give
        back. Not called on cancellation (shutdown): `give_back` returns what is still here."""
        if self._in_flight.get(push.id) is push:  # (not a later claim's copy of it)
            del self._in_flight[push.id]
        self._lease_ends.pop((push.id, push.attempts), None)

    async def _one(self, push: Push, muted: bool) -> asyncio.Future[bool] | None:
        """Send `push` (or put it off, or fail it); its "sent" mark, when it went out."""
        now = self.services.clock.now()
        ends = self._lease_ends.get((push.id, push.attempts))
        if ends is None or now >= ends:  # None: given back or forgotten, no longer ours
            # Waited in its chat's queue too long (slow sends ahead of it): the lease is
            # (nearly) gone and a later claim takes the push again; sending now could repeat it.
            log.warning("outbox push not sent, its lease ran out while queued id=%s", push.id)
            # Given back due now, its try not counted (a queue slow for long must not use up
            # its attempts); if another sender took it meanwhile this matches nothing.
            await self._later(push, now, "lease-ran-out")
            return None
        if muted:
            return await self._settle(push, Delivery.cannot(MUTED))
        morning = self._quiet_until(now) if push.quiet else None
        if morning is not None:
            await self._later(push, morning, "quiet-hours")
            return None
        message_id = None
        if push.mode == outbox.EDIT:
            message_id = await self._original(push)
            if message_id is None:
                return None
        delivery = await self._send(push, message_id)
        return await self._settle(push, delivery)

    def _quiet_until(self, now: datetime) -> datetime | None:
        rules = self.services.rules.nudges
        return quiet_until(now, self.services.settings.tz, rules.quiet_start, rules.quiet_end)

    async def _original(self, push: Push) -> str | None:
        """The message id an edit applies to; None when the edit was put off or failed."""
        assert push.edit_of is not None
        async with self.services.db.reader() as session:
            state, message_id = await outbox.sent_message_id(session, push.edit_of)
        if state in (outbox.PENDING, outbox.HELD):
            now = self.services.clock.now()
            await self._later(push, now + ORIGINAL_WAIT, "waiting-original")
            return None
        if message_id is None:
            await self._settle(push, Delivery.cannot("original-not-sent"))
        return message_id

    async def _send(self, push: Push, message_id: str | None) -> Delivery:
        reply = Reply.from_json(push.payload)
        try:
            if push.mode == outbox.SEND:
                pusher = self.senders.pusher(push.channel)
                if _has_notices(type(pusher)):
                    notices = cast(NoticePusher, pusher)
                    rules = self.services.rules
                    return await notices.send_notice(push.chat_id, push.kind, reply, rules)
                return await pusher.send(push.chat_id, reply)
            poster = self.senders.poster(push.channel)
            if push.mode == outbox.POST:
                return await poster.post(push.chat_id, reply)
            assert message_id is not None
            return await poster.edit(push.chat_id, message_id, reply)
        except Exception as exc:  # a sender should answer a Delivery; a crash is a failure
            log.warning("sender raised id=%s channel=%s error=%s", push.id, push.channel, exc)
            return Delivery(False, "exception")

    async def _later(self, push: Push, when: datetime, reason: str) -> None:
        """Put a push off without counting an attempt (quiet hours, its original not sent)."""
        now = self.services.clock.now()
        async with self.services.db.transaction() as session:
            await outbox.retry(session, push, now, when, reason, counts=False)

    async def _settle(self, push: Push, delivery: Delivery) -> asyncio.Future[bool] | None:
        """Mark the push by what its app answered (see the module docstring). Sent: the mark
        is queued (bot.jobs.marks) and returned, for `_marked` to wait for."""
        now = self.services.clock.now()
        if delivery.sent:
            return self.marks.ask(push, now, delivery.message_id)
        reason = delivery.reason or "error"
        kept, outcome = await self._unsent(push, delivery, now, reason)
        if outcome == "hold" and kept:
            await self.services.pushes.held(push.channel, push.chat_id)
        if not kept:
            log.warning("outbox lease lost id=%s (another sender took it over)", push.id)
        self.metrics.failures.labels(push.channel, reason, outcome).inc()
        return None

    def _marked(self, push: Push, marking: asyncio.Future[bool]) -> None:
        """A sent push's mark was written (or failed): say what came of it."""
        failed = marking.exception()
        if failed is not None:
            log.error("outbox push failed id=%s kind=%s", push.id, push.kind, exc_info=failed)
            return
        if not marking.result():
            log.warning("outbox lease lost id=%s (another sender took it over)", push.id)
        counter = self._sent.get((push.channel, push.kind))
        if counter is None:  # `labels` looks the child up under a lock: once per kind here
            counter = self._sent[(push.channel, push.kind)] = self.metrics.sent.labels(
                push.channel, push.kind
            )
        counter.inc()

    async def _unsent(
        self, push: Push, delivery: Delivery, now: datetime, reason: str
    ) -> tuple[bool, str]:
        """Mark a push its app did not take; (row still ours, outcome)."""
        async with self.services.db.transaction() as session:
            if delivery.final:
                kept = await outbox.fail(session, push, now, reason)
                # Says something about the person only when the app refused them.
                if push.mode == outbox.SEND and reason not in NOT_ABOUT_THEM:
                    await identities.mark_unreachable(
                        session, push.channel, push.chat_id, now, f"{push.channel}:{reason}"
                    )
                outcome = "failed"
            elif delivery.hold:
                until = now + timedelta(days=self.rules.hold_days)
                kept = await outbox.hold(session, push, now, until, reason)
                if push.mode == outbox.SEND:  # what the app said about the person, kept
                    await identities.record_send_error(
                        session, push.channel, push.chat_id, now, f"{push.channel}:{reason}"
                    )
                outcome = "hold"
            elif delivery.retry_after is not None:
                # At least a second: an app answering "wait 0 s" must not spin the sender.
                at = now + timedelta(seconds=max(delivery.retry_after, 1.0))
                kept = await outbox.retry(session, push, now, at, reason, counts=False)
                outcome = "retry"
            elif push.attempts >= self.rules.max_attempts:
                kept = await outbox.fail(session, push, now, reason)
                outcome = "failed"
            else:
                at = now + timedelta(seconds=backoff(push.attempts, self.rules, self.rng))
                kept = await outbox.retry(session, push, now, at, reason)
                outcome = "retry"
        return kept, outcome


async def degraded(services: Services) -> str | None:
    """Why /healthz should say "degraded": a due push waiting past the rules' limit."""
    limit = services.rules.outbox.degraded_after_seconds
    lag = await outbox_metrics(services.metrics).lag(services.db, services.clock.now())
    if lag <= limit:
        return None
    return f"oldest due push waiting {lag:.0f} s (limit {limit} s)"


class _Drain:
    """One `OutboxSender.drain`: claims a batch whenever fewer than two batches are waiting to
    be started and at most two are not handled (marked) yet, and hands each push to its chat's
    queue.

    Each pool of send slots (`OutboxRules.slots`) has as many workers, started as they are
    needed; a worker takes a chat whose next push is ready, sends that push and goes on to
    the next ready chat. A push that went out is queued for its "sent" mark
    (bot.jobs.marks) and its chat becomes ready again once the mark is written, so a chat's
    pushes go one after the other, each marked before the next is sent, while the workers
    keep every slot sending (a mark waits for the one SQLite writer or a PostgreSQL round trip,
    often longer than a send)."""

    def __init__(
        self, sender: OutboxSender, stop: asyncio.Event | None, tasks: asyncio.TaskGroup
    ) -> None:
        self.sender = sender
        self.stop = stop
        self.tasks = tasks
        self.pools: dict[str, _Pool] = {}  # by channel (channels may share one)
        self.workers: list[asyncio.Task[None]] = []
        self.chats: dict[tuple[str, str], deque[tuple[Push, bool]]] = {}
        self.claimed = 0
        self.open = 0  # claimed here, not handled yet
        self.waiting = 0  # claimed here, not taken by a worker yet
        # What the claimer waits for (`_until`, `_until_taken`): `open` or `waiting` down to...
        self.wanted: tuple[int, int] = (-1, -1)
        self.progress = asyncio.Event()
        self.closed = False

    async def claiming(self, max_batches: int) -> None:
        batch_size = self.sender.rules.batch
        for _ in range(max_batches):
            if self.stop is not None:
                if self.stop.is_set():
                    break
                await self.sender.measure()
            batch, muted = await self._claim()
            if not batch:
                if not self.open:
                    return
                await self._until(0)  # what is out may make more due (an edit's original)
                continue
            self.claimed += len(batch)
            self.open += len(batch)
            self.waiting += len(batch)
            for push in batch:
                self._hand(push, push.marketing and push.member_id in muted)
            if len(batch) == batch_size:
                # The next batch once fewer than two batches are left to start (the workers
                # must not run dry; pushes sent and waiting for their marks do not count)...
                await self._until_taken(2 * batch_size - 1)
                # ...and once at most two batches are open (sent pushes waiting for their
                # marks count): slow marks slow the claims, so what a crash can send twice
                # stays within the three batches claimed.
                await self._until(2 * batch_size)
            else:  # a short batch: nothing more is due now; claim again once this one is done
                await self._until(0)
        await self._until(0)

    def held(self) -> list[Push]:
        """The pushes claimed here and not handled yet (being sent, marked, or waiting)."""
        return [push for queued in self.chats.values() for push, _ in queued]

    def close(self) -> None:
        """The drain is over (or cancelled): its workers stop; marks written later only
        forget their pushes."""
        self.closed = True
        for worker in self.workers:
            worker.cancel()

    async def _claim(self) -> tuple[list[Push], set[int]]:
        try:
            return await self.sender.claim()
        except Exception:
            await self._until(0)  # sends under way finish (and are marked) first
            raise

    def _hand(self, push: Push, muted: bool) -> None:
        key = (push.channel, push.chat_id)
        queued = self.chats.get(key)
        if queued is not None:  # the chat has a push out: this one follows it
            queued.append((push, muted))
            return
        queued = self.chats[key] = deque([(push, muted)])
        self._ready(queued)

    def _ready(self, queued: deque[tuple[Push, bool]]) -> None:
        """The chat's next push can be sent: a worker of its pool takes it."""
        channel = queued[0][0].channel
        pool = self.pools.get(channel)
        if pool is None:
            name, size = self.sender.rules.slots(channel)
            same = [p for p in self.pools.values() if p.name == name]
            pool = self.pools[channel] = same[0] if same else _Pool(name, size)
        pool.ready.put_nowait(queued)
        # More chats ready than idle workers to take them (a worker woken by `put_nowait`
        # counts as idle until it runs): one more worker, up to the pool's slots.
        if pool.ready.qsize() > pool.idle and pool.workers < pool.size:
            pool.workers += 1
            self.workers.append(self.tasks.create_task(self._work(pool)))

    async def _work(self, pool: _Pool) -> None:
        sender = self.sender
        while True:
            pool.idle += 1
            try:
                queued = await pool.ready.get()
            finally:
                pool.idle -= 1
            push, muted = queued[0]
            self.waiting -= 1
            if self.waiting <= self.wanted[1]:
                self.progress.set()
            try:
                marking = await sender._one(push, muted)
            except Exception:  # one push's trouble must not stop its chat's others
                log.exception("outbox push failed id=%s kind=%s", push.id, push.kind)
                marking = None
            if marking is None:
                self._next(queued, push)
            else:
                marking.add_done_callback(functools.partial(self._marked, queued, push))

    def _marked(
        self, queued: deque[tuple[Push, bool]], push: Push, marking: asyncio.Future[bool]
    ) -> None:
        self.sender._marked(push, marking)
        self._next(queued, push)

    def _next(self, queued: deque[tuple[Push, bool]], push: Push) -> None:
        """`push` is handled: its chat's next one, if any, is ready."""
        self.sender._finished(push)
        queued.popleft()
        self.open -= 1
        if self.open <= self.wanted[0]:
            self.progress.set()
        if self.closed:
            return
        if queued:
            self._ready(queued)
        else:
            del self.chats[(push.channel, push.chat_id)]

    async def _until(self, most: int) -> None:
        """Wait until at most `most` pushes claimed here are still to be handled."""
        while self.open > most:
            self.wanted = (most, -1)
            self.progress.clear()
            await self.progress.wait()
        self.wanted = (-1, -1)

    async def _until_taken(self, most: int) -> None:
        """Wait until at most `most` pushes claimed here are still to be taken by a worker."""
        while self.waiting > most:
            self.wanted = (-1, most)
            self.progress.clear()
            await self.progress.wait()
        self.wanted = (-1, -1)


class _Pool:
    """A pool of send slots in one drain: its workers and the chats ready for them."""

    __slots__ = ("idle", "name", "ready", "size", "workers")

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size = name, size
        self.ready: asyncio.Queue[deque[tuple[Push, bool]]] = asyncio.Queue()
        self.workers = 0
        self.idle = 0
