"""The complaints desk in chat, for people with the staff (or admin) role: take, reply, ask
and wait, resolve, assign, and the open tickets by time left. Everyone else is refused and
nothing changes.
"""

from __future__ import annotations

from datetime import datetime

from bot.core.context import Context
from bot.core.errors import DomainError
from bot.core.i18n import N_, Translator
from bot.core.messages import Button, Inbound, Reply
from bot.core.middleware import require_role
from bot.core.router import REPLY_TO_POST, Router
from handlers import desk
from handlers import ticket_basics as basics
from handlers.ticket_basics import Actor, person
from storage import members, roles, tickets
from storage.models import Member, Ticket

REFUSAL = N_("Only support staff can do that.")
router = Router("staff-desk", middlewares=(require_role(roles.STAFF, REFUSAL),))
# Replies to the bot's posts: only those in the staff chat are the desk's business.
posts = Router("staff-posts")


def _actor(ctx: Context) -> Actor:
    return Actor(ctx.me.id, person(ctx.me))


def _split(args: str, usage: str) -> tuple[str, str]:
    raw, _, rest = args.strip().partition(" ")
    if not raw:
        raise DomainError(usage)
    return raw, rest.strip()


def _done(ctx: Context, text: str, ticket: Ticket) -> Reply:
    return Reply(ctx.t(text, number=tickets.number(ticket.id)))


@router.action("take", commands=("take",), menu="TAKE")
async def take(msg: Inbound, ctx: Context) -> Reply:
    """`/take NO`; `/take` alone takes the unowned ticket with the least time left."""
    raw = msg.args.strip().partition(" ")[0]
    if not raw:
        async with ctx.services.db.reader() as session:
            queue = await tickets.listing(session, (tickets.OPEN,))
        unowned = [t for t in queue if t.assignee_id is None]
        if not unowned:
            return Reply(ctx.t(N_("No open tickets.")))
        raw = tickets.number(unowned[0].id)
    ticket = await desk.take(ctx.services, _actor(ctx), raw)
    return _done(ctx, N_("{number} is yours."), ticket)


@router.action("reply", commands=("reply",))
async def reply(msg: Inbound, ctx: Context) -> Reply:
    raw, text = _split(msg.args, N_("/reply NUMBER TEXT (or #key for a canned reply)"))
    ticket = await desk.reply(ctx.services, _actor(ctx), raw, text)
    return _done(ctx, N_("Sent to the member of {number}."), ticket)


@router.action("wait", commands=("wait",))
async def wait(msg: Inbound, ctx: Context) -> Reply:
    raw, text = _split(msg.args, N_("/wait NUMBER QUESTION"))
    ticket = await desk.wait(ctx.services, _actor(ctx), raw, text)
    return _done(ctx, N_("Asked; {number} waits for the member (the clock stops)."), ticket)


@router.action("resolve", commands=("resolve",), menu="RESOLVE")
async def resolve(msg: Inbound, ctx: Context) -> Reply:
    raw, text = _split(msg.args, N_("/resolve NUMBER TEXT"))
    ticket = await desk.resolve(ctx.services, _actor(ctx), raw, text)
    return _done(ctx, N_("{number} is resolved; the member is asked for a score."), ticket)


@router.action("assign", commands=("assign",))
async def assign(msg: Inbound, ctx: Context) -> Reply:
    """`/assign NO STAFF`: STAFF is `channel:id`, an id in the sender's app, or `#member`."""
    raw, who = _split(msg.args, N_("/assign NUMBER STAFF"))
    if not who:
        raise DomainError(N_("/assign NUMBER STAFF"))
    staff = await _staff_member(ctx, msg.channel, who)
    ticket = await desk.assign(ctx.services, _actor(ctx), raw, staff)
    return Reply(
        ctx.t(N_("{number} is now {name}'s."), number=tickets.number(ticket.id), name=person(staff))
    )


async def _staff_member(ctx: Context, channel: str, who: str) -> Member:
    async with ctx.services.db.reader() as session:
        found: Member | None
        if who.startswith("#") and who[1:].isdigit():
            found = await members.get(session, int(who[1:]))
        else:
            app, sep, external = who.partition(":")
            found = await members.find_by_identity(
                session, app if sep else channel, external if sep else who
            )
        if found is None or not await roles.has_anywhere(session, found.id, roles.STAFF):
            raise DomainError(N_("{who} is not a member with the staff role."), who=who[:64])
    return found


@router.action("open-tickets", commands=("open",))
async def open_tickets(msg: Inbound, ctx: Context) -> Reply:
    """Active tickets, the least time left first."""
    now = ctx.services.clock.now()
    async with ctx.services.db.reader() as session:
        found = await tickets.listing_with_assignees(session, tickets.ACTIVE)
    if not found:
        return Reply(ctx.t(N_("No open tickets.")))
    lines = [ctx.t(N_("Open tickets:"))]
    buttons: list[Button] = []
    for ticket, name in found[:30]:
        # Named as `person` names them: the display name, else their number.
        owner = (name or f"#{ticket.assignee_id}") if ticket.assignee_id else ctx.t(N_("nobody"))
        lines.append(
            f"• {tickets.number(ticket.id)} · {ctx.t(basics.STATE_LABELS[ticket.state])} · "
            f"{time_left(ctx.t, ticket, now)} · {owner}"
        )
        if ticket.assignee_id is None and len(buttons) < 5:
            no = tickets.number(ticket.id)
            buttons.append(Button(ctx.t(N_("Take {number}"), number=no), f"TAKE:{no}"))
    return Reply("\n".join(lines), buttons=tuple(buttons))


def time_left(t: Translator, ticket: Ticket, now: datetime) -> str:
    """What is left of the first-response time, or how late it is."""
    if ticket.first_response_at is not None:
        return t(N_("answered"))
    if ticket.state == tickets.WAITING:
        return t(N_("clock stopped"))
    minutes = int((ticket.first_response_due - now).total_seconds() // 60)
    span = f"{abs(minutes) // 60}h{abs(minutes) % 60:02d}m"
    if minutes < 0:
        return t(N_("{span} overdue"), span=span)
    return t(N_("{span} left"), span=span)


@posts.action(REPLY_TO_POST)
async def reply_to_post(msg: Inbound, ctx: Context) -> Reply | None:
    """A staff member's reply to a ticket's post in the staff chat answers the member.

    Replies to the bot elsewhere (a community group's announcements) are left alone."""
    services = ctx.services
    staff_chat = services.settings.telegram_staff_chat_id
    if msg.channel != "telegram" or not staff_chat or msg.chat_id != staff_chat:
        return None
    async with services.db.reader() as session:
        ticket_id = await tickets.by_post(session, msg.channel, msg.chat_id, msg.reply_to or "")
        allowed = await roles.has_anywhere(session, ctx.me.id, roles.STAFF)
    if not allowed:
        raise DomainError(REFUSAL)
    if ticket_id is None:
        raise DomainError(N_("That post is about no ticket: use /reply NUMBER TEXT."))
    ticket = await desk.reply(services, _actor(ctx), str(ticket_id), msg.args)
    return _done(ctx, N_("Sent to the member of {number}."), ticket)
