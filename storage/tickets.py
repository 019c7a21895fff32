"""Complaint tickets: filing, the conversation, the audit trail, and every state change.

A state change is one conditional UPDATE whose WHERE names the state it starts from: when two
people act on one ticket at once, one statement matches and the other matches nothing, and the
caller tells its person what happened instead. Nothing here is check-then-write.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import Table, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import rowcount
from storage.models import Member, OutboxPush, Ticket, TicketEvent, TicketMessage

OPEN, ASSIGNED, WAITING, RESOLVED, CLOSED = "open", "assigned", "waiting", "resolved", "closed"
STATES = (OPEN, ASSIGNED, WAITING, RESOLVED, CLOSED)
ACTIVE = (OPEN, ASSIGNED, WAITING)
DONE = (RESOLVED, CLOSED)
CATEGORIES = ("product", "delivery", "after-sales", "service", "other")
MEMBER, STAFF = "member", "staff"

_tickets: Table = Ticket.__table__  # type: ignore[assignment]
_POST_KEY = re.compile(r"^ticket:(\d+):")
_NUMBER = re.compile(r"^\s*(?:c-?)?0*(\d{1,12})\s*$", re.IGNORECASE)


def number(ticket_id: int) -> str:
    return f"C-{ticket_id:06d}"


def parse_number(text: str) -> int | None:
    """`C-000123`, `c-123` or `123` as a ticket id; None for anything else."""
    found = _NUMBER.match(text)
    return int(found.group(1)) if found and int(found.group(1)) > 0 else None


async def file(
    session: AsyncSession,
    member_id: int,
    category: str,
    text: str,
    now: datetime,
    *,
    warn_at: datetime,
    due: datetime,
    author: str,
    refers_to: int | None = None,
    photo: str | None = None,
) -> Ticket:
    """A new open ticket with the member's first message; its deadlines start now."""
    ticket = Ticket(
        member_id=member_id,
        category=category,
        state=OPEN,
        created_at=now,
        warn_at=warn_at,
        first_response_due=due,
        escalated=False,
        refers_to_id=refers_to,
    )
    session.add(ticket)
    await session.flush()
    await add_message(session, ticket.id, MEMBER, member_id, author, text, now, photo)
    action = f"filed ({category})"
    if refers_to is not None:
        action += f", follows {number(refers_to)}"
    await add_event(session, ticket.id, author, action, now)
    return ticket


async def add_message(
    session: AsyncSession,
    ticket_id: int,
    sender: str,
    author_id: int | None,
    author: str,
    text: str,
    now: datetime,
    photo: str | None = None,
) -> int:
    """Add to the conversation; the message's id (it keys the push that carries it)."""
    message = TicketMessage(
        ticket_id=ticket_id,
        at=now,
        sender=sender,
        author_id=author_id,
        author=author[:64],
        text=text[:4000],
        photo=photo,
    )
    session.add(message)
    await session.flush()
    return message.id


async def add_event(
    session: AsyncSession, ticket_id: int, actor: str, action: str, now: datetime
) -> None:
    session.add(TicketEvent(ticket_id=ticket_id, at=now, actor=actor[:64], action=action[:200]))
    await session.flush()


async def get(session: AsyncSession, ticket_id: int) -> Ticket | None:
    found = await session.execute(
        select(Ticket).where(Ticket.id == ticket_id).execution_options(populate_existing=True)
    )
    return found.scalar_one_or_none()


async def of_member(session: AsyncSession, member_id: int, limit: int = 20) -> list[Ticket]:
    stmt = (
        select(Ticket).where(Ticket.member_id == member_id).order_by(Ticket.id.desc()).limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def listing(
    session: AsyncSession, states: tuple[str, ...] = STATES, limit: int = 200
) -> list[Ticket]:
    """Tickets in `states`, the soonest first-response deadline first."""
    stmt = (
        select(Ticket)
        .where(Ticket.state.in_(states))
        .order_by(Ticket.first_response_due, Ticket.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def listing_with_assignees(
    session: AsyncSession, states: tuple[str, ...] = STATES, limit: int = 200
) -> list[tuple[Ticket, str | None]]:
    """`listing`, each ticket with its assignee's display name (None: no assignee, or one
    without a name), in one statement: the assignees joined, not looked up ticket by ticket."""
    stmt = (
        select(Ticket, Member.display_name)
        .outerjoin(Member, Member.id == Ticket.assignee_id)
        .where(Ticket.state.in_(states))
        .order_by(Ticket.first_response_due, Ticket.id)
        .limit(limit)
    )
    return [(ticket, name) for ticket, name in (await session.execute(stmt)).all()]


async def messages(session: AsyncSession, ticket_id: int) -> list[TicketMessage]:
    stmt = (
        select(TicketMessage).where(TicketMessage.ticket_id == ticket_id).order_by(TicketMessage.id)
    )
    return list((await session.execute(stmt)).scalars())


async def events(session: AsyncSession, ticket_id: int) -> list[TicketEvent]:
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
    return list((await session.execute(stmt)).scalars())


async def _change(session: AsyncSession, ticket_id: int, where: Any, **values: Any) -> bool:
    stmt = update(_tickets).where(_tickets.c.id == ticket_id, where).values(**values)
    return rowcount(await session.execute(stmt)) == 1


async def take(session: AsyncSession, ticket_id: int, staff_id: int) -> bool:
    """An open, unowned ticket becomes `staff_id`'s; False when someone else was first."""
    free = (_tickets.c.state == OPEN) & _tickets.c.assignee_id.is_(None)
    return await _change(session, ticket_id, free, state=ASSIGNED, assignee_id=staff_id)


async def assign(session: AsyncSession, ticket_id: int, staff_id: int) -> bool:
    """Give an active ticket to `staff_id` (an escalated one may change hands this way)."""
    state = case((_tickets.c.state == OPEN, ASSIGNED), else_=_tickets.c.state)
    active = _tickets.c.state.in_(ACTIVE)
    return await _change(session, ticket_id, active, state=state, assignee_id=staff_id)


async def responded(session: AsyncSession, ticket_id: int, now: datetime) -> bool:
    """Record the first response; False when there was one already."""
    return await _change(
        session, ticket_id, _tickets.c.first_response_at.is_(None), first_response_at=now
    )


async def wait(session: AsyncSession, ticket_id: int, staff_id: int | None, now: datetime) -> bool:
    """Waiting on the member: the first-response clock stops until they answer."""
    owner = func.coalesce(_tickets.c.assignee_id, staff_id)
    movable = _tickets.c.state.in_((OPEN, ASSIGNED))
    return await _change(
        session, ticket_id, movable, state=WAITING, waiting_since=now, assignee_id=owner
    )


async def resume(session: AsyncSession, ticket: Ticket, warn_at: datetime, due: datetime) -> bool:
    """The member answered a waiting ticket: back to its handler, with the deadlines moved
    past the pause (the caller computes them from `ticket` as read).

    Compare-and-set on `waiting_since`: a second answer arriving at once moves nothing."""
    if ticket.state != WAITING or ticket.waiting_since is None:
        return False
    same_wait = (_tickets.c.state == WAITING) & (_tickets.c.waiting_since == ticket.waiting_since)
    state = case((_tickets.c.assignee_id.is_(None), OPEN), else_=ASSIGNED)
    return await _change(
        session,
        ticket.id,
        same_wait,
        state=state,
        waiting_since=None,
        warn_at=warn_at,
        first_response_due=due,
    )


async def resolve(
    session: AsyncSession, ticket_id: int, staff_id: int | None, now: datetime
) -> bool:
    owner = func.coalesce(_tickets.c.assignee_id, staff_id)
    return await _change(
        session,
        ticket_id,
        _tickets.c.state.in_(ACTIVE),
        state=RESOLVED,
        resolved_at=now,
        waiting_since=None,
        assignee_id=owner,
    )


async def reopen(session: AsyncSession, ticket_id: int, since: datetime) -> bool:
    """A ticket resolved at or after `since` goes back to its handler (or the queue)."""
    recent = (_tickets.c.state == RESOLVED) & (_tickets.c.resolved_at >= since)
    state = case((_tickets.c.assignee_id.is_(None), OPEN), else_=ASSIGNED)
    return await _change(session, ticket_id, recent, state=state, resolved_at=None)


async def rate(session: AsyncSession, ticket_id: int, score: int) -> bool:
    """The member's score, once, credited to whoever handled the ticket."""
    unrated = _tickets.c.score.is_(None) & _tickets.c.state.in_(DONE)
    return await _change(
        session, ticket_id, unrated, score=score, scored_handler_id=_tickets.c.assignee_id
    )


async def due_ids(session: AsyncSession, column: str, now: datetime) -> list[int]:
    """Active tickets without a first response whose `warn_at` or `first_response_due` passed
    and that were not warned (escalated) yet: candidates; `mark_*` decides atomically."""
    stmt = select(_tickets.c.id).where(*_pending(column, now)).order_by(_tickets.c.id).limit(500)
    return list((await session.execute(stmt)).scalars())


def _pending(column: str, now: datetime) -> tuple[Any, ...]:
    done = _tickets.c.warned_at if column == "warn_at" else _tickets.c.escalated_at
    return (
        _tickets.c.state.in_((OPEN, ASSIGNED)),
        _tickets.c.first_response_at.is_(None),
        _tickets.c[column] <= now,
        done.is_(None),
    )


async def mark_warned(session: AsyncSession, ticket_id: int, now: datetime) -> bool:
    """True for the one process that warns about this ticket."""
    where = _pending("warn_at", now)
    stmt = update(_tickets).where(_tickets.c.id == ticket_id, *where).values(warned_at=now)
    return rowcount(await session.execute(stmt)) == 1


async def mark_escalated(session: AsyncSession, ticket_id: int, now: datetime) -> bool:
    """True for the one process that escalates this ticket."""
    where = _pending("first_response_due", now)
    stmt = (
        update(_tickets)
        .where(_tickets.c.id == ticket_id, *where)
        .values(escalated=True, escalated_at=now)
    )
    return rowcount(await session.execute(stmt)) == 1


async def close_due(session: AsyncSession, now: datetime, resolved_before: datetime) -> list[int]:
    """Close what was resolved before `resolved_before`; the ids closed now."""
    stmt = (
        update(_tickets)
        .where(_tickets.c.state == RESOLVED, _tickets.c.resolved_at < resolved_before)
        .values(state=CLOSED, closed_at=now)
        .returning(_tickets.c.id)
    )
    return list((await session.execute(stmt)).scalars())


async def counts_by_state(session: AsyncSession) -> dict[str, int]:
    stmt = select(_tickets.c.state, func.count()).group_by(_tickets.c.state)
    return {state: int(n) for state, n in (await session.execute(stmt)).all()}


async def merge(session: AsyncSession, survivor_id: int, loser_id: int) -> None:
    """Linked accounts: the tickets (filed, handled, scored, written) follow the survivor."""
    for column in ("member_id", "assignee_id", "scored_handler_id"):
        await session.execute(
            update(_tickets).where(_tickets.c[column] == loser_id).values({column: survivor_id})
        )
    await session.execute(
        update(TicketMessage)
        .where(TicketMessage.author_id == loser_id)
        .values(author_id=survivor_id)
    )


async def by_post(session: AsyncSession, channel: str, chat_id: str, message_id: str) -> int | None:
    """The ticket that a message the bot posted in a chat (its outbox row) was about."""
    stmt = (
        select(OutboxPush.dedupe_key)
        .where(
            OutboxPush.channel == channel,
            OutboxPush.chat_id == chat_id,
            OutboxPush.message_id == message_id,
            OutboxPush.dedupe_key.like("ticket:%"),
        )
        .limit(1)
    )
    key = (await session.execute(stmt)).scalar_one_or_none()
    found = _POST_KEY.match(key or "")
    return int(found.group(1)) if found else None
