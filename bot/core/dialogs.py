"""Multi-step conversations: which question a member is answering.

Kept in the core's cache (Redis in scale mode), not in a chat framework, so the answer may
reach any process, and the same dialog works on WeChat, Telegram and the terminal alike.
"""

from __future__ import annotations

from storage.cache import Cache

DIALOG_TTL = 600  # an unanswered question is forgotten after ten minutes
# Dialog steps that take a picture as their answer (others see a picture as no answer).
MEDIA_ANSWERS: set[str] = set()


class Dialogs:
    def __init__(self, cache: Cache, ttl: float = DIALOG_TTL) -> None:
        self.cache = cache
        self.ttl = ttl

    async def ask(self, member_id: int, action: str) -> None:
        """The member's next message that is no command or keyword goes to `action`."""
        await self.cache.set(self.cache.keys.dialog(member_id), action, self.ttl)

    async def pending(self, member_id: int) -> str | None:
        return await self.cache.get(self.cache.keys.dialog(member_id))

    async def done(self, member_id: int) -> None:
        await self.cache.delete(self.cache.keys.dialog(member_id))
