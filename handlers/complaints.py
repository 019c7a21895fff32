"""Complaints, the member's side: file one (in one line or guided), list them, add to one,
reopen it, rate how it was handled. The staff's side is in handlers/staff_desk.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.dialogs import DIALOG_TTL, MEDIA_ANSWERS, Dialogs
from bot.core.errors import DomainError
from bot.core.i18n import N_
from bot.core.messages import Button, Inbound, Reply
from bot.core.router import Router
from handlers import desk, ticket_media
from handlers import ticket_basics as basics
from handlers.help import unknown
from handlers.ticket_basics import CATEGORY_LABELS, STATE_LABELS, person
from storage import tickets
from storage.models import Ticket

router = Router("complaints")

CATEGORY_ACTION = "complain-{category}"  # the dialog step that takes the text
PHOTO_ACTION = "complain-photo"  # the step that takes the photo (or Skip)
# Apps that send photos (the terminal has none: there the complaint is filed after its text).
PHOTO_CHANNELS = ("telegram", "wechat")
NOT_SOLVED = N_("Not solved")
PHOTO_REFUSED = N_(
    "I could not keep that photo (an image of at most {mb} MB). Send another, or tap Skip."
)
LOW_SCORE = 2
SCORES = ("1", "2", "3", "4", "5")  # this or less alerts the staff chat


def _promise(ctx: Context, ticket: Ticket) -> str:
    services = ctx.services
    return ctx.t(
        N_(
            "Your complaint is filed as {number}. We will give you a first reply within "
            "{hours} hours (by {due}). Add to it with /ticket {number} TEXT."
        ),
        number=tickets.number(ticket.id),
        hours=basics.hours_text(services.rules.first_response_hours(ctx.me.tier)),
        due=basics.local_time(services, ticket.first_response_due),
    )


def _text(ctx: Context, raw: str) -> str:
    return raw.strip()[: ctx.services.rules.limits.text_length]


@router.action(
    "complain",
    commands=("complain",),
    keywords={"zh_CN": ("投诉",), "zh_TW": ("投訴",), "en": ("complain",)},
    menu="COMPLAIN",
    label=N_("Complain"),
    help=N_("File a complaint: “complain TEXT” or /complain"),
    summary=N_("File a complaint"),
)
async def complain(msg: Inbound, ctx: Context) -> Reply:
    """With text: filed at once. Alone: the category first, then the text."""
    text = _text(ctx, msg.args)
    if text:
        ticket = await desk.file(ctx.services, ctx.me, "other", text)
        return Reply(_promise(ctx, ticket), private=True)
    buttons = tuple(
        Button(ctx.t(label), f"COMPLAIN_CAT:{category}")
        for category, label in CATEGORY_LABELS.items()
    )
    return Reply(ctx.t(N_("What is your complaint about?")), buttons=buttons, private=True)


@router.action("complain-category", menu="COMPLAIN_CAT")
async def complain_category(msg: Inbound, ctx: Context) -> Reply:
    category = msg.args.strip().lower()
    if category not in CATEGORY_LABELS:
        raise DomainError(N_("Please pick one of the options, or send /complain again."))
    await Dialogs(ctx.services.cache).ask(ctx.me.id, CATEGORY_ACTION.format(category=category))
    return Reply(
        ctx.t(
            N_("{category}: please describe what happened in one message."),
            category=ctx.t(CATEGORY_LABELS[category]),
        ),
        private=True,
    )


def _guided(category: str) -> None:
    async def file_text(msg: Inbound, ctx: Context) -> Reply:
        text = _text(ctx, msg.args)
        if not text:
            raise DomainError(N_("Please describe what happened in one message."))
        if msg.channel not in PHOTO_CHANNELS:
            await Dialogs(ctx.services.cache).done(ctx.me.id)
            ticket = await desk.file(ctx.services, ctx.me, category, text)
            return Reply(_promise(ctx, ticket), private=True)
        # Kept in the cache like the dialog itself: the photo may reach another process.
        draft = json.dumps({"category": category, "text": text})
        cache = ctx.services.cache
        await cache.set(cache.keys.complaint_draft(ctx.me.id), draft, DIALOG_TTL)
        await Dialogs(cache).ask(ctx.me.id, PHOTO_ACTION)
        skip = Button(ctx.t(N_("Skip")), "COMPLAIN_PHOTO:skip")
        ask = ctx.t(N_("A photo helps: send one now, or tap Skip."))
        return Reply(ask, buttons=(skip,), private=True)

    router.action(CATEGORY_ACTION.format(category=category))(file_text)


for _category in CATEGORY_LABELS:
    _guided(_category)


@router.action(PHOTO_ACTION, menu="COMPLAIN_PHOTO")
async def complain_photo(msg: Inbound, ctx: Context) -> Reply:
    """The guided complaint's last step: a photo, Skip, or more text (added to it)."""
    services = ctx.services
    cache = services.cache
    key = cache.keys.complaint_draft(ctx.me.id)
    stored = await cache.get(key)
    if stored is None:
        await Dialogs(cache).done(ctx.me.id)
        raise DomainError(N_("That took too long; please send /complain again."))
    kept = shown = None
    if msg.media_id:
        kept = await ticket_media.keep_photo(services, msg.channel, msg.media_id)
        if kept is None:
            megabytes = services.rules.complaints.photo_max_bytes // (1024 * 1024)
            skip = Button(ctx.t(N_("Skip")), "COMPLAIN_PHOTO:skip")
            text = ctx.t(PHOTO_REFUSED, mb=megabytes)
            return Reply(text, buttons=(skip,), private=True)
        # Telegram shows its own file again by id; others' photos go to the staff chat as files.
        shown = msg.media_id if msg.channel == "telegram" else kept
    await Dialogs(cache).done(ctx.me.id)
    await cache.delete(key)
    draft = json.loads(stored)
    text, more = draft["text"], _text(ctx, msg.args)
    if more and more.lower() != "skip" and not msg.menu_key:
        text = f"{text}\n{more}"
    ticket = await desk.file(
        services, ctx.me, draft["category"], text, photo=kept, shown_photo=shown
    )
    return Reply(_promise(ctx, ticket), private=True)


MEDIA_ANSWERS.add(PHOTO_ACTION)


@router.action(
    "tickets",
    commands=("tickets",),
    keywords={"zh_CN": ("我的投诉",), "zh_TW": ("我的投訴",), "en": ("tickets",)},
    help=N_("Your complaints: “tickets” or /tickets"),
    summary=N_("Your complaints and their state"),
)
async def my_tickets(msg: Inbound, ctx: Context) -> Reply:
    async with ctx.services.db.reader() as session:
        found = await tickets.of_member(session, ctx.me.id)
    if not found:
        return Reply(ctx.t(N_("You have no complaints. File one with /complain TEXT.")))
    lines = [ctx.t(N_("Your complaints:"))]
    for ticket in found:
        filed = basics.local_time(ctx.services, ticket.created_at)
        state = ctx.t(STATE_LABELS[ticket.state])
        category = ctx.t(CATEGORY_LABELS[ticket.category])
        lines.append(f"• {tickets.number(ticket.id)} · {category} · {state} · {filed}")
    return Reply("\n".join(lines), private=True)


@router.action(
    "ticket",
    commands=("ticket",),
    keywords={"en": ("ticket",)},
)
async def add_to_ticket(msg: Inbound, ctx: Context) -> Reply:
    """Add to one's ticket: a waiting one goes back to its handler, a recently resolved one
    reopens, an older one is followed by a new ticket that refers to it."""
    raw, _, rest = msg.args.strip().partition(" ")
    text = _text(ctx, rest)
    if not raw:
        raise DomainError(N_("Which ticket? /ticket NUMBER TEXT"))
    if not text:
        return await _show(ctx, raw)
    return await _follow_up(ctx, raw, text)


@router.action("not-solved", menu="REOPEN")
async def not_solved(msg: Inbound, ctx: Context) -> Reply:
    """The "Not solved" button under a resolution: reopens it (or follows it up)."""
    return await _follow_up(ctx, msg.args.strip(), ctx.t(NOT_SOLVED))


async def _follow_up(ctx: Context, raw: str, text: str) -> Reply:
    services, me = ctx.services, ctx.me
    async with services.db.transaction() as session:
        ticket = await basics.find(session, raw, me.id)
        answer = await _add(ctx, session, ticket, text)
    if answer is None:
        new = await desk.file(services, me, ticket.category, text, refers_to=ticket.id)
        old = tickets.number(ticket.id)
        answer = ctx.t(N_("{old} is closed, so this is a new ticket that refers to it."), old=old)
        answer += "\n" + _promise(ctx, new)
    services.pushes.wake()
    return Reply(answer, private=True)


async def _add(ctx: Context, session: AsyncSession, ticket: Ticket, text: str) -> str | None:
    """Add the member's message to `ticket`; None when it is too old to reopen."""
    services, me = ctx.services, ctx.me
    now = services.clock.now()
    no = tickets.number(ticket.id)
    finished = ticket.state in tickets.DONE
    if finished:
        since = now - timedelta(days=services.rules.complaints.reopen_days)
        if not await tickets.reopen(session, ticket.id, since):
            return None
        await tickets.add_event(session, ticket.id, person(me), "reopened", now)
    elif await desk.resume(session, services, ticket):
        await tickets.add_event(session, ticket.id, person(me), "answered", now)
    message_id = await tickets.add_message(
        session, ticket.id, tickets.MEMBER, me.id, person(me), text, now
    )
    t = basics.staff_t(services)
    heading = t(N_("{number}: the member wrote:"), number=no)
    key = f"ticket:{ticket.id}:followup:{message_id}"
    await basics.tell_staff(session, services, "ticket-followup", key, Reply(f"{heading}\n{text}"))
    if finished:
        return ctx.t(N_("{number} is reopened; we will get back to you."), number=no)
    return ctx.t(N_("Added to {number}."), number=no)


async def _show(ctx: Context, raw: str) -> Reply:
    async with ctx.services.db.reader() as session:
        ticket = await basics.find(session, raw, ctx.me.id)
        said = await tickets.messages(session, ticket.id)
    t = ctx.t
    lines = [f"{tickets.number(ticket.id)} · {t(STATE_LABELS[ticket.state])}"]
    for message in said:
        who = t(N_("You")) if message.sender == tickets.MEMBER else t(N_("Staff"))
        lines.append(f"{basics.local_time(ctx.services, message.at)} {who}: {message.text}")
    return Reply("\n".join(lines), private=True)


@router.action(
    "rate",
    commands=("rate",),
    keywords={"zh_CN": ("评分",), "zh_TW": ("評分",), "en": ("rate",)},
    menu="RATE",
)
async def rate(msg: Inbound, ctx: Context) -> Reply:
    """Score a resolved ticket 1-5, once; a low score alerts the staff chat."""
    raw, _, score_text = msg.args.replace(":", " ").strip().partition(" ")
    score_text = score_text.strip()
    if not raw or score_text not in SCORES:
        raise DomainError(N_("Rate a resolved ticket from 1 to 5: /rate NUMBER 5"))
    return await _rate(ctx, raw, int(score_text))


@router.action("rate-digit", keywords={"en": SCORES})
async def rate_digit(msg: Inbound, ctx: Context) -> Reply | None:
    """A bare digit (WeChat and the terminal have no buttons) rates the member's latest
    resolved, unrated ticket; without one it answers a pending question (a digit is a fine
    answer to one), or is text nobody understood."""
    digit = msg.text.strip()
    if digit in SCORES:
        async with ctx.services.db.reader() as session:
            mine = await tickets.of_member(session, ctx.me.id)
        unrated = [x for x in mine if x.state in tickets.DONE and x.score is None]
        if unrated:
            return await _rate(ctx, tickets.number(unrated[0].id), int(digit))
    pending = await Dialogs(ctx.services.cache).pending(ctx.me.id)
    step = ctx.words.handler(pending) if pending else None
    if step is not None:
        return await step.handler(replace(msg, args=msg.text.strip()), ctx)
    return await unknown(msg, ctx)


async def _rate(ctx: Context, raw: str, score: int) -> Reply:
    services, me = ctx.services, ctx.me
    now = services.clock.now()
    async with services.db.transaction() as session:
        ticket = await basics.find(session, raw, me.id)
        no = tickets.number(ticket.id)
        if ticket.state not in tickets.DONE:
            raise DomainError(N_("{number} is not resolved yet."), number=no)
        if not await tickets.rate(session, ticket.id, score):
            raise DomainError(N_("You rated {number} already. Thank you!"), number=no)
        await tickets.add_event(session, ticket.id, person(me), f"rated {score}", now)
        services.metrics.ticket_scores.labels(str(score)).inc()
        if score <= LOW_SCORE:
            t = basics.staff_t(services)
            alert = Reply(t(N_("{number} was rated {score} of 5."), number=no, score=score))
            await basics.tell_staff(
                session, services, "ticket-low-score", f"ticket:{ticket.id}:low", alert
            )
    services.pushes.wake()
    return Reply(ctx.t(N_("Thank you! You rated {number} {score} of 5."), number=no, score=score))
