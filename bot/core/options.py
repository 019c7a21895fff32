"""Typed numbers that pick an option: apps without buttons show them as "[1] Check in".

Such an app's adapter asks this to remember, per account, what the numbers of the last reply
stood for (in the cache: the answer may reach another process), and to turn a bare number into
that option's action.
"""

from __future__ import annotations

import json
from dataclasses import replace

from bot.core.messages import Inbound, Reply, options
from storage.cache import Cache

OPTIONS_TTL = 600  # seconds a typed number still picks from the last numbered options


class NumberedOptions:
    def __init__(self, cache: Cache, ttl: float = OPTIONS_TTL) -> None:
        self.cache = cache
        self.ttl = ttl

    async def remember(self, channel: str, chat_id: str, reply: Reply) -> None:
        """Keep what the numbers of `reply` stand for, for this account's next message."""
        if choices := options(reply):
            key = self.cache.keys.options(channel, chat_id)
            await self.cache.set(key, json.dumps([b.action for b in choices]), self.ttl)

    async def pick(self, msg: Inbound) -> Inbound:
        """A bare number becomes the option it stands for; anything else is left as it is."""
        text = msg.text.strip()
        # ASCII only: "²" passes str.isdigit() but not int(); "١" would pick an option unasked.
        if msg.menu_key or not (text.isascii() and text.isdigit()) or len(text) > 2:
            return msg
        stored = await self.cache.get(self.cache.keys.options(msg.channel, msg.external_id))
        actions = json.loads(stored) if stored else []
        index = int(text) - 1
        if not 0 <= index < len(actions):
            return msg
        return replace(msg, menu_key=str(actions[index]))
