"""Group commit of "sent" marks: what the outbox sender writes after each successful send.

Each push is still marked right after its app accepted it (its chat's next push waits for the
mark), but the marks that arrive while one is being written go together in the next: one
statement (storage.outbox.mark_sent_group, committed by itself) for many pushes instead of a
transaction each. On SQLite (one writer at a time) that is what lets sending keep pace with
the app. The sender's send slot does not wait for the mark (`ask`), so what a crash can repeat
is the pushes in flight plus the sends of about one statement's time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from storage import outbox
from storage.db import Database
from storage.outbox import Push

GROUP = 200  # marks written by one statement at most
Mark = tuple[Push, datetime, str | None, "asyncio.Future[bool]"]


class SentMarks:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[Mark] = []
        self._writing: asyncio.Task[None] | None = None

    async def mark(self, push: Push, now: datetime, message_id: str | None) -> bool:
        """Mark `push` sent; False when its lease was lost (see storage.outbox.mark_sent)."""
        # Shielded: a sender cancelled at shutdown still has its mark written.
        return await asyncio.shield(self.ask(push, now, message_id))

    def ask(self, push: Push, now: datetime, message_id: str | None) -> asyncio.Future[bool]:
        """Queue the mark of `push`; the future says what `mark` returns once it is written
        (await it shielded: it is written whether or not its waiter is still there)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((push, now, message_id, done))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write(), name="outbox-marks")
        return done

    async def flushed(self) -> None:
        """Wait until every mark asked for has been written (or has failed)."""
        while self._writing is not None and not self._writing.done():
            await asyncio.shield(self._writing)

    async def _write(self) -> None:
        while self._waiting:
            # Bounded: one statement's conditions grow with the group (SQLite caps depth).
            batch, self._waiting = self._waiting[:GROUP], self._waiting[GROUP:]
            try:
                # One statement for the group; the latest time stands for all (milliseconds).
                sent = [(push, message_id) for push, _, message_id, _ in batch]
                marked = await outbox.mark_sent_group(
                    self.db, sent, max(now for _, now, _, _ in batch)
                )
                kept = [push.id in marked for push, *_ in batch]
            except Exception as exc:  # each waiting sender logs it as its push's failure
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (*_, done), ok in zip(batch, kept, strict=True):
                if not done.done():
                    done.set_result(ok)
