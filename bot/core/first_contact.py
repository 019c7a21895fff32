"""The privacy notice's one line, ending a brand-new member's first answer whatever they asked.

The dispatcher adds it after the whole middleware chain, so it ends a welcome, a check-in, a
refusal (an unknown invite code) alike, in the member's language, once. Never in a group: the
group does not need it, and Telegram lets the bot write to a person privately only after they
opened its private chat, which someone new to the bot has not. Theirs waits in the cache for the
welcome of that private chat (/start, or any help)."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.core.context import Context
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply

log = logging.getLogger("memberbot.dispatcher")

NOTICE = N_(
    "We keep your app account, name, birthday if you give it, and your points history, "
    "only to run your membership. Details: /privacy"
)
OWED_TTL = 90 * 24 * 3600.0  # a notice owed from a group waits this long for the private chat
OWED = "1"  # counted past by the one answer that shows it


async def with_notice(msg: Inbound, ctx: Context, reply: Reply | None) -> Reply | None:
    """`reply` ending with the notice when it is the member's first private answer."""
    if ctx.member is None or not (ctx.is_new or ctx.action == "help"):
        return reply
    try:
        if msg.is_group or reply is None:
            if ctx.is_new:
                await ctx.services.cache.set(_key(ctx), OWED, OWED_TTL)
            return reply
        if not ctx.is_new and not await _owed_here(ctx):
            return reply
    except Exception:  # the answer matters more than the notice
        log.exception("privacy notice failed channel=%s member=%s", msg.channel, ctx.me.id)
        return reply
    return replace(reply, text=f"{reply.text}\n{ctx.t(NOTICE)}")


async def _owed_here(ctx: Context) -> bool:
    """True for the one answer that takes a notice owed from a group (atomic: two /start at
    once count it to 2 and 3, only the first shows it)."""
    cache = ctx.services.cache
    key = _key(ctx)
    if await cache.get(key) != OWED:
        return False
    return await cache.incr(key, OWED_TTL) == int(OWED) + 1


def _key(ctx: Context) -> str:
    return ctx.services.cache.keys.privacy_notice(ctx.me.id)
