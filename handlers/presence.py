"""Whether the bot may write to an account: blocked or unblocked, followed or unfollowed."""

from __future__ import annotations

from bot.core.context import Context
from bot.core.events import Blocked, Subscribed, Unblocked, Unsubscribed
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from handlers.help import show_help
from storage import identities

router = Router("presence")


@router.action(Blocked.action)
async def blocked(msg: Inbound, ctx: Context) -> None:
    """Recorded on the identity; nothing is sent to it any more (no retry storm)."""
    assert isinstance(msg.event, Blocked)
    services = ctx.services
    async with services.db.transaction() as session:
        await identities.mark_unreachable(
            session,
            msg.channel,
            msg.external_id,
            services.clock.now(),
            f"{msg.channel}:{msg.event.reason}",
        )
    return None


@router.action(Unblocked.action)
async def unblocked(msg: Inbound, ctx: Context) -> None:
    async with ctx.services.db.transaction() as session:
        await identities.mark_reachable(session, msg.channel, msg.external_id)
    return None


@router.action(Unsubscribed.action)
async def unsubscribed(msg: Inbound, ctx: Context) -> None:
    """An unfollow stops every push and erases what is kept beyond the account and ledger."""
    services = ctx.services
    async with services.db.transaction() as session:
        await identities.mark_unreachable(
            session,
            msg.channel,
            msg.external_id,
            services.clock.now(),
            f"{msg.channel}:unsubscribed",
            erase_personal=True,
        )
    return None


@router.action(Subscribed.action)
async def subscribed(msg: Inbound, ctx: Context) -> Reply | None:
    """A follow (or a scan of an invite QR code): pushes may resume; welcome them."""
    async with ctx.services.db.transaction() as session:
        await identities.mark_reachable(session, msg.channel, msg.external_id)
    return await show_help(msg, ctx)
