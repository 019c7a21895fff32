"""The complaints desk's work on a ticket, wherever it is asked for: the staff chat, the
operator API, the command line. Each step changes the ticket atomically, keeps an event in
the audit trail and queues what the member (or the staff chat) must be told, in one
transaction; the caller wakes the outbox after it.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Services
from bot.core.i18n import N_, Term, Translator
from bot.core.messages import Button, Reply
from bot.core.options import NumberedOptions
from bot.jobs.pushes import newest_reachable, push_to_member
from handlers import ticket_clock
from handlers.ticket_basics import (
    STATE_LABELS,
    Actor,
    TicketConflict,
    announce,
    find,
    person,
)
from storage import members, tickets
from storage.models import Member, Ticket


async def file(
    services: Services,
    member: Member,
    category: str,
    text: str,
    refers_to: int | None = None,
    photo: str | None = None,
    shown_photo: str | None = None,
) -> Ticket:
    """File a ticket for `member`; the staff chat hears of it. `photo` is the kept file,
    `shown_photo` what the staff chat's post shows (a Telegram file id, or the file)."""
    rules, tz = services.rules.complaints, services.settings.tz
    now = services.clock.now()
    hours = services.rules.first_response_hours(member.tier)
    async with services.db.transaction() as session:
        ticket = await tickets.file(
            session,
            member.id,
            category,
            text,
            now,
            warn_at=ticket_clock.add_hours(now, hours * rules.warn_at, rules, tz),
            due=ticket_clock.add_hours(now, hours, rules, tz),
            author=person(member),
            refers_to=refers_to,
            photo=photo,
        )
        await announce(session, services, ticket, text, shown_photo)
    services.metrics.tickets.inc()
    services.pushes.wake()
    return ticket


async def resume(session: AsyncSession, services: Services, ticket: Ticket) -> bool:
    """The member answered: what was left of the clock when the wait began runs again now."""
    if ticket.waiting_since is None:
        return False
    rules, tz = services.rules.complaints, services.settings.tz
    now, paused = services.clock.now(), ticket.waiting_since
    warn_left = ticket_clock.hours_between(paused, ticket.warn_at, rules, tz)
    due_left = ticket_clock.hours_between(paused, ticket.first_response_due, rules, tz)
    # A deadline already past when the wait began stays where it was.
    warn_at = ticket_clock.add_hours(now, warn_left, rules, tz) if warn_left else ticket.warn_at
    due = (
        ticket_clock.add_hours(now, due_left, rules, tz) if due_left else ticket.first_response_due
    )
    return await tickets.resume(session, ticket, warn_at, due)


async def take(services: Services, actor: Actor, raw: str) -> Ticket:
    """Make the ticket the actor's; if someone else has it, say who."""
    assert actor.member_id is not None
    async with services.db.transaction() as session:
        ticket = await find(session, raw)
        if not await tickets.take(session, ticket.id, actor.member_id):
            await _refuse_taken(session, ticket, actor)
        await tickets.add_event(session, ticket.id, actor.name, "took", services.clock.now())
        return await _fresh(session, ticket.id)


async def _refuse_taken(session: AsyncSession, ticket: Ticket, actor: Actor) -> None:
    current = await tickets.get(session, ticket.id)
    assert current is not None
    no = tickets.number(ticket.id)
    if current.state not in tickets.ACTIVE:
        raise TicketConflict(
            N_("{number} is {state} already."), number=no, state=Term(STATE_LABELS[current.state])
        )
    if current.assignee_id == actor.member_id:
        raise TicketConflict(N_("{number} is yours already."), number=no)
    holder = await members.get(session, current.assignee_id) if current.assignee_id else None
    name = person(holder) if holder else "?"
    raise TicketConflict(N_("{number} is already taken by {name}."), number=no, name=name)


async def _fresh(session: AsyncSession, ticket_id: int) -> Ticket:
    ticket = await tickets.get(session, ticket_id)
    assert ticket is not None
    return ticket


def _canned(services: Services, text: str) -> str:
    """`#key` is the rules' canned reply of that name."""
    text = text.strip()
    if text.startswith("#") and " " not in text:
        canned = services.rules.complaints.canned.get(text[1:])
        if canned is None:
            raise TicketConflict(N_("There is no canned reply {key}."), key=text)
        return canned
    return text


async def _say_to_member(
    session: AsyncSession,
    services: Services,
    ticket: Ticket,
    actor: Actor,
    text: str,
    kind: str,
    heading: str,
) -> None:
    """Keep the staff message in the conversation and send it to the member in their app."""
    now = services.clock.now()
    message_id = await tickets.add_message(
        session, ticket.id, tickets.STAFF, actor.member_id, actor.name, text, now
    )
    no = tickets.number(ticket.id)

    def render(t: Translator) -> Reply:
        return Reply(f"{t(heading, number=no)}\n{text}", private=True)

    key = f"ticket:{ticket.id}:message:{message_id}"
    await push_to_member(session, services, ticket.member_id, kind, key, render)


async def reply(services: Services, actor: Actor, raw: str, text: str) -> Ticket:
    """Answer the member; the first answer meets the first-response promise."""
    body = _canned(services, text)
    if not body:
        raise TicketConflict(N_("What should the reply say? /reply NUMBER TEXT"))
    now = services.clock.now()
    async with services.db.transaction() as session:
        ticket = await find(session, raw)
        if ticket.state == tickets.CLOSED:
            raise TicketConflict(N_("{number} is closed."), number=tickets.number(ticket.id))
        if actor.member_id is not None:
            await tickets.take(session, ticket.id, actor.member_id)
        first = await tickets.responded(session, ticket.id, now)
        heading = N_("Reply on your ticket {number}:")
        await _say_to_member(session, services, ticket, actor, body, "staff-reply", heading)
        await tickets.add_event(session, ticket.id, actor.name, "replied", now)
        ticket = await _fresh(session, ticket.id)
    if first:
        _observe_first_response(services, ticket)
    services.pushes.wake()
    return ticket


def _observe_first_response(services: Services, ticket: Ticket) -> None:
    if ticket.first_response_at is not None:
        hours = (ticket.first_response_at - ticket.created_at).total_seconds() / 3600
        services.metrics.first_response.observe(hours)


async def wait(services: Services, actor: Actor, raw: str, text: str) -> Ticket:
    """Ask the member something; the first-response clock stops until they answer."""
    body = _canned(services, text)
    if not body:
        raise TicketConflict(N_("What should we ask? /wait NUMBER QUESTION"))
    now = services.clock.now()
    async with services.db.transaction() as session:
        ticket = await find(session, raw)
        if not await tickets.wait(session, ticket.id, actor.member_id, now):
            no = tickets.number(ticket.id)
            raise TicketConflict(
                N_("{number} is {state}."), number=no, state=Term(STATE_LABELS[ticket.state])
            )
        heading = N_("Question about your ticket {number} (answer with /ticket {number} TEXT):")
        await _say_to_member(session, services, ticket, actor, body, "staff-reply", heading)
        await tickets.add_event(session, ticket.id, actor.name, "waiting on the member", now)
        ticket = await _fresh(session, ticket.id)
    services.pushes.wake()
    return ticket


async def resolve(services: Services, actor: Actor, raw: str, text: str) -> Ticket:
    """Close the case for now and ask the member for a 1-5 score."""
    body = _canned(services, text) if text.strip() else ""
    now = services.clock.now()
    async with services.db.transaction() as session:
        ticket = await find(session, raw)
        no = tickets.number(ticket.id)
        if not await tickets.resolve(session, ticket.id, actor.member_id, now):
            raise TicketConflict(
                N_("{number} is {state} already."),
                number=no,
                state=Term(STATE_LABELS[ticket.state]),
            )
        first = await tickets.responded(session, ticket.id, now)
        author = actor.name
        if body:
            await tickets.add_message(
                session, ticket.id, tickets.STAFF, actor.member_id, author, body, now
            )

        def render(t: Translator) -> Reply:
            lines = [t(N_("Your ticket {number} is resolved."), number=no)]
            scores = tuple(Button(str(n), f"RATE:{no}:{n}") for n in range(1, 6))
            buttons = (*scores, Button(t(N_("Not solved")), f"REOPEN:{no}"))
            if body:
                lines.append(body)
            lines.append(
                t(
                    N_(
                        "How did we do? Rate 1 (bad) to 5 (great): /rate {number} 5. "
                        "Not solved? Tell us with /ticket {number} TEXT."
                    ),
                    number=no,
                )
            )
            return Reply("\n".join(lines), buttons=buttons, private=True)

        key = f"ticket:{ticket.id}:resolved:{now.isoformat()}"
        await push_to_member(session, services, ticket.member_id, "ticket-resolved", key, render)
        await tickets.add_event(session, ticket.id, author, "resolved", now)
        ticket = await _fresh(session, ticket.id)
        account = newest_reachable(await members.identities_of(session, ticket.member_id), None)
    if first:
        _observe_first_response(services, ticket)
    services.pushes.wake()
    if account is not None:
        # Apps without buttons show the scores as numbers: a bare digit next picks one.
        asked = render(Translator(services.settings.default_locale))
        await NumberedOptions(services.cache).remember(account.channel, account.external_id, asked)
    return ticket


async def assign(services: Services, actor: Actor, raw: str, staff: Member) -> Ticket:
    """Give the ticket to `staff` (who must hold the staff role: the caller checks)."""
    now = services.clock.now()
    async with services.db.transaction() as session:
        ticket = await find(session, raw)
        if not await tickets.assign(session, ticket.id, staff.id):
            no = tickets.number(ticket.id)
            raise TicketConflict(
                N_("{number} is {state} already."),
                number=no,
                state=Term(STATE_LABELS[ticket.state]),
            )
        action = f"assigned to {person(staff)}"
        await tickets.add_event(session, ticket.id, actor.name, action, now)
        return await _fresh(session, ticket.id)
