"""Middlewares around every action, outermost first: errors, member, locale, flood limit.

Each has the one signature `(handler, msg, ctx)`; a feature router may add its own (e.g.
`require_role`) that run inside these.
"""

from __future__ import annotations

import asyncio
import logging
from weakref import WeakKeyDictionary

from bot.core.context import Context
from bot.core.errors import DomainError
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply
from bot.core.router import Middleware, Next
from storage import identities, members, roles
from storage.db import Database, once_more_if_needed

log = logging.getLogger("memberbot.handlers")

APOLOGY = N_("Sorry, something went wrong on our side. Please try again.")


async def error_replies(handler: Next, msg: Inbound, ctx: Context) -> Reply | None:
    """A domain refusal becomes its translated message; anything else a logged apology.

    An event (a group join, a block) has nobody to apologise to: it is only logged."""
    try:
        try:
            return await handler(msg, ctx)
        except DomainError as exc:
            # Rendering can fail too (a translation naming a placeholder that does not exist):
            # that lands in the apology below instead of escaping to the channel.
            # Private: a refusal often names the member's own state (tier, growth, codes).
            return Reply(ctx.t(exc.message, **exc.params), private=True)
    except Exception:
        ctx.services.metrics.errors.inc()
        log.exception(
            "handler failed action=%s channel=%s member=%s",
            ctx.action,
            msg.channel,
            ctx.member.id if ctx.member else None,
        )
        return None if msg.event is not None else Reply(ctx.t(APOLOGY))


async def member_lookup(handler: Next, msg: Inbound, ctx: Context) -> Reply | None:
    """Find the member behind the sender, creating them on first contact.

    An event that creates nobody (a block, a group join) gets the member if there is one.
    If the member is merged into another (the accounts were linked) while the handler ran,
    or PostgreSQL broke a deadlock by aborting it, its writes were rolled back: it runs once
    more (as the merged member).

    An action whose handler checks the member in its own statement (`known_member`: the
    check-in) first gets the member this process last found for the account, without a
    lookup; when that turns out stale (MemberMerged), the second run looks up afresh."""
    services = ctx.services
    known = [_trusts_known(ctx)]

    async def as_member() -> Reply | None:
        if msg.event is not None and not msg.event.creates_member:
            async with services.db.reader() as session:
                ctx.member = await members.find_by_identity(session, msg.channel, msg.external_id)
            return await handler(msg, ctx)
        ctx.known_member, known[0] = known[0], False  # the second run: a fresh lookup
        ctx.member, is_new = await members.get_or_create(
            services.db,
            msg.channel,
            msg.external_id,
            services.clock.now(),
            display_name=msg.display_name,
            known=ctx.known_member,
        )
        ctx.is_new = ctx.is_new or is_new
        return await handler(msg, ctx)

    return await once_more_if_needed(as_member)


# Per database (tests run many in one process): the accounts this process recorded a private
# chat of, so only a person's first private message here costs a write.
_PRIVATE_SEEN: WeakKeyDictionary[Database, set[tuple[str, str]]] = WeakKeyDictionary()
_PRIVATE_SEEN_MAX = 100_000


async def private_chat(handler: Next, msg: Inbound, ctx: Context) -> Reply | None:
    """A message written in a private chat (not in a group, not an app's event) shows the bot
    may write there: recorded on the account, so a group press queues the claim code for that
    chat instead of sending the person there by a deep link."""
    # Only Telegram has group chats whose members may never have written to the bot: a
    # WeChat follower's (or the terminal's) private chat is always open, so they pay nothing.
    if msg.channel == "telegram" and msg.event is None and not msg.is_group:
        services = ctx.services
        seen = _PRIVATE_SEEN.setdefault(services.db, set())
        account = (msg.channel, msg.external_id)
        if account not in seen:
            try:
                async with services.db.transaction() as session:
                    await identities.private_chat_opened(
                        session, msg.channel, msg.external_id, services.clock.now()
                    )
            except Exception:  # the answer matters more; the next message tries again
                log.exception("recording a private chat failed channel=%s", msg.channel)
            else:
                if len(seen) >= _PRIVATE_SEEN_MAX:
                    seen.clear()
                seen.add(account)
    return await handler(msg, ctx)


async def flood_limit(handler: Next, msg: Inbound, ctx: Context) -> Reply | None:
    """Past the per-minute limit a member is told once; the rest of that minute is dropped.

    Counted in the cache, so with Redis the limit holds across processes. Events are what
    the app reports, not what the person sends: they are not counted.
    """
    if msg.event is not None:
        return await handler(msg, ctx)
    services = ctx.services
    limit = services.rules.limits.flood_per_minute
    minute = int(services.clock.now().timestamp() // 60)
    count = await services.cache.incr(services.cache.keys.flood(ctx.me.id, minute), ttl=120)
    if count <= limit:
        return await handler(msg, ctx)
    if count == limit + 1:
        if ctx.known_member:  # its language may have changed since (in another process)
            fresh = await members.lookup(services.db, msg.channel, msg.external_id)
            ctx.speak(fresh.locale if fresh is not None else None, msg.locale_hint)
        return Reply(ctx.t(N_("You're sending messages too fast. Please wait a minute.")))
    return None


async def locale(handler: Next, msg: Inbound, ctx: Context) -> Reply | None:
    """The member's chosen language, else their app's, else the deployment default."""
    ctx.speak(ctx.member.locale if ctx.member is not None else None, msg.locale_hint)
    return await handler(msg, ctx)


async def held_pushes(handler: Next, msg: Inbound, ctx: Context) -> Reply | None:
    """After answering someone who writes, send what waited for them to write (WeChat's
    window reopened; a terminal member back in the shell): with or right after the answer.

    Whether anything waits is asked of the cache as the message comes in, so that it goes
    with the flood counter (one round trip for both); the release follows the answer. The
    check-in's statement reads it from the outbox itself (`ctx.pushes_held`): no cache call,
    unless the answer came without that statement (a refusal, an error)."""
    if msg.event is not None:
        return await handler(msg, ctx)
    pushes = ctx.services.pushes
    asked = None
    if not _trusts_known(ctx):
        asked = asyncio.ensure_future(pushes.maybe_held(msg.channel, msg.external_id))
    try:
        return await handler(msg, ctx)
    finally:
        # Whatever the answer (a refusal too): the person wrote, so their window is open.
        try:
            if asked is not None:
                waiting = await asked
            elif ctx.pushes_held is not None:
                waiting = ctx.pushes_held
            else:
                waiting = await pushes.maybe_held(msg.channel, msg.external_id)
            if waiting:
                await pushes.release(msg.channel, msg.external_id)
        except Exception:  # the answer matters more; the next message tries again
            log.exception("releasing held pushes failed channel=%s", msg.channel)


def _trusts_known(ctx: Context) -> bool:
    """The action's handler checks the member in its own statement (`Action.known_member`)."""
    action = ctx.vocabulary.actions.get(ctx.action) if ctx.vocabulary is not None else None
    return action is not None and action.known_member


def require_role(role: str, refusal: str) -> Middleware:
    """A router middleware: only members holding `role` somewhere (or admin) get through;
    others get `refusal` (an N_ message) and nothing else happens."""

    async def check(handler: Next, msg: Inbound, ctx: Context) -> Reply | None:
        async with ctx.services.db.reader() as session:
            allowed = await roles.has_anywhere(session, ctx.me.id, role)
        if not allowed:
            raise DomainError(refusal)
        return await handler(msg, ctx)

    return check


DEFAULT_MIDDLEWARES: tuple[Middleware, ...] = (
    error_replies,
    held_pushes,
    member_lookup,
    private_chat,
    locale,
    flood_limit,
)
