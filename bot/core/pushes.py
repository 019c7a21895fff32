"""Messages the bot sends on its own to a member, in their language, in an app that reaches them.

Best effort and in the background: the request that caused a push (an invitee's check-in) does
not wait for another person's app. What an app says about the person (blocked the bot, outside
WeChat's reply window) is recorded on their identity.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.core.clock import Clock
from bot.core.i18n import Translator, pick_locale
from bot.core.messages import Reply
from bot.core.ports import Delivery, Senders
from storage import identities, members
from storage.db import Database

log = logging.getLogger("memberbot.pushes")

Render = Callable[[Translator], Reply]


class Pushes:
    def __init__(self, db: Database, clock: Clock, senders: Senders, default_locale: str) -> None:
        self.db = db
        self.clock = clock
        self.senders = senders
        self.default_locale = default_locale
        self._pending: set[asyncio.Task[bool]] = set()
        self._wakers: list[Callable[[], None]] = []

    def on_wake(self, waker: Callable[[], None]) -> None:
        """Whoever sends the outbox here (the embedded sender, a worker's queue) listens."""
        self._wakers.append(waker)

    def wake(self) -> None:
        """Pushes were committed to the outbox: send them now rather than at the next poll.
        Call after the transaction that queued them (`bot.jobs.pushes.push_to_member`)."""
        for waker in self._wakers:
            waker()

    def soon(self, member_id: int, render: Render) -> None:
        """Push in the background; `settle()` waits for what was started."""
        task = asyncio.create_task(self.to_member(member_id, render))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Wait for the background pushes started so far (shutdown, the terminal, tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def to_member(self, member_id: int, render: Render) -> bool:
        """Try the member's accounts, newest first, until one app takes the message."""
        async with self.db.reader() as session:
            member = await members.get(session, member_id)
            accounts = await members.identities_of(session, member_id)
        if member is None:
            return False
        t = Translator(pick_locale(member.locale, None, self.default_locale))
        for identity in sorted(accounts, key=lambda i: i.id, reverse=True):
            if identity.unreachable or identity.channel not in self.senders.pushers:
                continue
            delivery = await self.to_chat(identity.channel, identity.external_id, render(t))
            if delivery.sent:
                return True
        log.info("push not delivered member=%s", member_id)
        return False

    async def to_chat(self, channel: str, chat_id: str, reply: Reply) -> Delivery:
        """Send to one account; a refusal the app gives is kept on the identity."""
        try:
            delivery = await self.senders.pusher(channel).send(chat_id, reply)
        except Exception:  # one app failing must not stop the others or the caller
            log.exception("push failed channel=%s", channel)
            return Delivery(False, "error")
        if not delivery.sent:
            await self._record(channel, chat_id, delivery)
        return delivery

    async def _record(self, channel: str, chat_id: str, delivery: Delivery) -> None:
        if not (delivery.final or delivery.hold):
            return
        reason = f"{channel}:{delivery.reason}"
        async with self.db.transaction() as session:
            if delivery.final:
                await identities.mark_unreachable(
                    session, channel, chat_id, self.clock.now(), reason
                )
            else:
                await identities.record_send_error(
                    session, channel, chat_id, self.clock.now(), reason
                )
