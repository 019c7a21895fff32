"""The outbox sender: takes due pushes, sends them through the apps' senders, marks each.

Each push is marked in its own short transaction right after its app answered, so a crash
can repeat at most the pushes in flight (at least once, never lost). What the app answered
decides what follows (bot.core.ports.Delivery): sent; wait `retry_after` (not counted as an
attempt); hold until the person writes again (WeChat's window); final (failed, the account
marked unreachable); anything else retried with exponential backoff and jitter until the
rules' maximum of attempts. One chat's pushes go in order; chats go in parallel, bounded.
A pusher may also have `send_notice` (NoticePusher: WeChat's template messages for the kinds
the rules give a template); the outbox then sends a person's pushes through it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

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
        self.marks = SentMarks(services.db)
        self._wake = asyncio.Event()
        self._in_flight: dict[int, Push] = {}
        self._claiming = 0
        self._measured = -METRICS_EVERY

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
        """Send batches until nothing is due (or `max_batches`); returns pushes handled."""
        total = 0
        for _ in range(max_batches):
            handled = await self.send_due()
            if not handled:
                break
            total += handled
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; between batches wait for a wake-up or the poll period."""
        while not stop.is_set():
            try:
                handled = await self.send_due()
                await self._measure()
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

    async def _measure(self) -> None:
        """Refresh the depth gauges now and then (a count over the whole table)."""
        if time.monotonic() - self._measured >= METRICS_EVERY:
            self._measured = time.monotonic()
            await self.metrics.refresh(self.services.db, self.services.clock.now())

    async def give_back(self) -> int:
        """Return pushes claimed but not marked (shutdown cut their send short): due now."""
        await self.marks.flushed()  # a push marked sent meanwhile is not given back
        left, self._in_flight = list(self._in_flight.values()), {}
        now = self.services.clock.now()
        async with self.services.db.transaction() as session:
            for push in left:
                await outbox.retry(session, push, now, now, "interrupted", counts=False)
        return len(left)

    async def send_due(self) -> int:
        """Claim one batch of due pushes and send them; returns how many were handled."""
        services = self.services
        now = services.clock.now()
        self._claiming += 1  # busy from the claim on: its rows are leased before they are here
        try:
            async with services.db.transaction() as session:
                await outbox.expire_holds(session, now)
                batch = await outbox.claim(
                    session,
                    now,
                    lease=timedelta(seconds=self.rules.lease_seconds),
                    limit=self.rules.batch,
                    channels=self.channels,
                )
            self._in_flight.update((push.id, push) for push in batch)
        finally:
            self._claiming -= 1
        if not batch:
            return 0
        marketing = {p.member_id for p in batch if p.marketing and p.member_id is not None}
        async with services.db.reader() as session:
            muted = await nudges.muted_among(session, marketing)
        chats: dict[tuple[str, str], list[Push]] = defaultdict(list)
        for push in batch:
            chats[(push.channel, push.chat_id)].append(push)
        limit = asyncio.Semaphore(self.rules.concurrency)
        await asyncio.gather(*(self._chat(limit, pushes, muted) for pushes in chats.values()))
        return len(batch)

    async def _chat(
        self, limit: asyncio.Semaphore, pushes: Sequence[Push], muted: set[int]
    ) -> None:
        async with limit:
            for push in pushes:
                try:
                    await self._one(push, muted)
                except Exception:  # one push's trouble must not stop its chat's others
                    log.exception("outbox push failed id=%s kind=%s", push.id, push.kind)
                # Not on cancellation (shutdown): `give_back` returns what is still here.
                self._in_flight.pop(push.id, None)

    async def _one(self, push: Push, muted: set[int]) -> None:
        now = self.services.clock.now()
        if push.marketing and push.member_id in muted:
            await self._settle(push, Delivery.cannot(MUTED))
            return
        morning = self._quiet_until(now) if push.quiet else None
        if morning is not None:
            await self._later(push, morning, "quiet-hours")
            return
        message_id = None
        if push.mode == outbox.EDIT:
            message_id = await self._original(push)
            if message_id is None:
                return
        delivery = await self._send(push, message_id)
        await self._settle(push, delivery)

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
                if isinstance(pusher, NoticePusher):
                    rules = self.services.rules
                    return await pusher.send_notice(push.chat_id, push.kind, reply, rules)
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

    async def _settle(self, push: Push, delivery: Delivery) -> None:
        """Mark the push by what its app answered (see the module docstring)."""
        now = self.services.clock.now()
        reason = delivery.reason or "error"
        if delivery.sent:
            kept = await self.marks.mark(push, now, delivery.message_id)
            outcome = "sent"
        else:
            kept, outcome = await self._unsent(push, delivery, now, reason)
        if outcome == "hold" and kept:
            await self.services.pushes.held(push.channel, push.chat_id)
        if not kept:
            log.warning("outbox lease lost id=%s (another sender took it over)", push.id)
        if outcome == "sent":
            self.metrics.sent.labels(push.channel, push.kind).inc()
        else:
            self.metrics.failures.labels(push.channel, reason, outcome).inc()

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
