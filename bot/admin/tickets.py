"""Operator actions on complaint tickets, shared by the API (/api/tickets) and the CLI
(`memberbot admin tickets`): the same steps the staff chat takes (handlers/desk.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.admin import fields
from bot.admin.errors import Conflict, Invalid, NotFound
from bot.core.context import Services
from bot.core.errors import DomainError
from bot.core.i18n import Translator
from handlers import desk
from handlers import ticket_basics as basics
from handlers.ticket_basics import Actor
from storage import members, roles, tickets
from storage.models import Member, Ticket

TEXT_FIELDS = ("text", "by")
ASSIGN_FIELDS = ("staff", "by")
BY_LIMIT = 64
OPERATOR = "operator"


def _iso(at: Any) -> str | None:
    return at.isoformat() if at is not None else None


async def _summary(session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    assignee = await members.get(session, ticket.assignee_id) if ticket.assignee_id else None
    return _summary_of(ticket, assignee.display_name if assignee is not None else None)


def _summary_of(ticket: Ticket, assignee_name: str | None) -> dict[str, Any]:
    """The ticket as JSON; its assignee named as the staff chat names them (`person`)."""
    assignee = None
    if ticket.assignee_id is not None:
        name = assignee_name or f"#{ticket.assignee_id}"
        assignee = {"member_id": ticket.assignee_id, "name": name}
    return {
        "number": tickets.number(ticket.id),
        "state": ticket.state,
        "category": ticket.category,
        "member": ticket.member_id,
        "assignee": assignee,
        "created_at": _iso(ticket.created_at),
        "first_response_due": _iso(ticket.first_response_due),
        "first_response_at": _iso(ticket.first_response_at),
        "escalated": ticket.escalated,
        "score": ticket.score,
        "refers_to": tickets.number(ticket.refers_to_id) if ticket.refers_to_id else None,
    }


async def _full(session: AsyncSession, ticket: Ticket) -> dict[str, Any]:
    data = await _summary(session, ticket)
    data["messages"] = [
        {"at": _iso(m.at), "from": m.sender, "text": m.text}
        for m in await tickets.messages(session, ticket.id)
    ]
    data["events"] = [
        {"at": _iso(e.at), "actor": e.actor, "action": e.action}
        for e in await tickets.events(session, ticket.id)
    ]
    return data


async def list_tickets(services: Services, state: str | None) -> list[dict[str, Any]]:
    """Tickets (in `state` if given), the soonest first-response deadline first: one
    statement, whatever the number of tickets and assignees."""
    states = tickets.STATES if state is None else (fields.choice("state", state, tickets.STATES),)
    async with services.db.reader() as session:
        found = await tickets.listing_with_assignees(session, states)
    return [_summary_of(ticket, name) for ticket, name in found]


async def show_ticket(services: Services, number: str) -> dict[str, Any]:
    """One ticket with its conversation and its audit trail."""
    async with services.db.reader() as session:
        return await _full(session, await _find(session, number))


async def _find(session: AsyncSession, number: str) -> Ticket:
    try:
        return await basics.find(session, number)
    except basics.NoTicket:
        raise NotFound("unknown ticket") from None


async def _run(services: Services, work: Callable[[], Awaitable[Ticket]]) -> dict[str, Any]:
    """Run a desk step; its refusal in the API's terms (English), the ticket as JSON."""
    try:
        ticket = await work()
    except basics.NoTicket:
        raise NotFound("unknown ticket") from None
    except DomainError as exc:
        raise Conflict(Translator("en")(exc.message, **exc.params)) from None
    async with services.db.reader() as session:
        return await _full(session, ticket)


def _actor(data: Mapping[str, object]) -> Actor:
    by = data.get("by", OPERATOR)
    return Actor(None, fields.text("by", by, BY_LIMIT) or OPERATOR)


def _text(services: Services, data: Mapping[str, object], required: bool) -> str:
    fields.no_unknown(data, TEXT_FIELDS, "ticket step")
    raw = data.get("text", "")
    limit = services.rules.limits.text_length
    said = fields.text("text", raw, limit, single_line=False)
    if required and not said:
        raise Invalid("text", f"text must be text of 1 to {limit} characters")
    return said


async def reply(services: Services, number: str, data: Mapping[str, object]) -> dict[str, Any]:
    said = _text(services, data, True)
    return await _run(services, lambda: desk.reply(services, _actor(data), number, said))


async def wait(services: Services, number: str, data: Mapping[str, object]) -> dict[str, Any]:
    said = _text(services, data, True)
    return await _run(services, lambda: desk.wait(services, _actor(data), number, said))


async def resolve(services: Services, number: str, data: Mapping[str, object]) -> dict[str, Any]:
    said = _text(services, data, False)
    return await _run(services, lambda: desk.resolve(services, _actor(data), number, said))


async def assign(services: Services, number: str, data: Mapping[str, object]) -> dict[str, Any]:
    """Give the ticket to `staff` (`channel`, `external_id`), who must hold the staff role."""
    fields.no_unknown(data, ASSIGN_FIELDS, "ticket step")
    staff = data.get("staff")
    if not isinstance(staff, Mapping):
        raise Invalid("staff", "staff must be an object with channel and external_id")
    channel = fields.channel(staff.get("channel"))
    external_id = fields.external_id(staff.get("external_id"))
    async with services.db.reader() as session:
        found: Member | None = await members.find_by_identity(session, channel, external_id)
        if found is None or not await roles.has_anywhere(session, found.id, roles.STAFF):
            raise Invalid("staff", "staff must be a member with the staff role")
    return await _run(services, lambda: desk.assign(services, _actor(data), number, found))


Step = Callable[[Services, str, Mapping[str, object]], Awaitable[dict[str, Any]]]
STEPS: dict[str, Step] = {"assign": assign, "reply": reply, "wait": wait, "resolve": resolve}
