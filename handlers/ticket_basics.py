"""What every part of the complaints desk shares: labels, errors, who acts, finding a
ticket, times as people read them, and posting to the staff chat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Services
from bot.core.errors import DomainError
from bot.core.i18n import N_, Translator
from bot.core.messages import Button, Reply
from bot.jobs.pushes import push_to_chat
from storage import members, outbox, tickets
from storage.models import Member, Ticket

CATEGORY_LABELS = {
    "product": N_("Product"),
    "delivery": N_("Delivery"),
    "after-sales": N_("After-sales"),
    "service": N_("Service"),
    "other": N_("Other"),
}
STATE_LABELS = {
    "open": N_("open"),
    "assigned": N_("being handled"),
    "waiting": N_("waiting for your answer"),
    "resolved": N_("resolved"),
    "closed": N_("closed"),
}


class NoTicket(DomainError):
    """No such ticket (for this person)."""


class TicketConflict(DomainError):
    """The ticket's state refuses the step (taken by someone else, closed, rated)."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff member in a chat (`member_id`), or an operator by name only."""

    member_id: int | None
    name: str


def person(member: Member) -> str:
    """How a member is named in the staff chat and the audit trail."""
    return member.display_name or f"#{member.id}"


def local_time(services: Services, at: datetime) -> str:
    return at.astimezone(services.settings.tz).strftime("%Y-%m-%d %H:%M")


def hours_text(hours: float) -> str:
    return f"{hours:g}"


async def find(session: AsyncSession, raw: str, member_id: int | None = None) -> Ticket:
    """The ticket `raw` names (`C-000123`, `123`), the member's own when `member_id` is given."""
    ticket_id = tickets.parse_number(raw)
    ticket = await tickets.get(session, ticket_id) if ticket_id else None
    if ticket is None or (member_id is not None and ticket.member_id != member_id):
        raise NoTicket(N_("There is no ticket {number}. Send /tickets to see yours."), number=raw)
    return ticket


def staff_target(services: Services) -> outbox.Target | None:
    chat_id = services.settings.telegram_staff_chat_id
    return outbox.Target("telegram", chat_id, None, mode=outbox.POST) if chat_id else None


def staff_t(services: Services) -> Translator:
    return Translator(services.settings.default_locale)


async def tell_staff(
    session: AsyncSession, services: Services, kind: str, key: str, reply: Reply
) -> None:
    """Post to the staff chat, when there is one."""
    target = staff_target(services)
    if target is not None:
        await push_to_chat(session, services, target, kind, key, reply)


async def announce(
    session: AsyncSession, services: Services, ticket: Ticket, text: str, photo: str | None
) -> None:
    """A new ticket in the staff chat: who, tier, points, earlier tickets, Take / Resolve."""
    t = staff_t(services)
    member = await members.get(session, ticket.member_id)
    assert member is not None
    earlier = [x for x in await tickets.of_member(session, member.id) if x.id != ticket.id]
    no = tickets.number(ticket.id)
    lines = [
        t(
            N_("New ticket {number} · {category} · due {due}"),
            number=no,
            category=t(CATEGORY_LABELS[ticket.category]),
            due=local_time(services, ticket.first_response_due),
        ),
        t(
            N_("From {name}: {tier}, {points} points, {earlier} earlier tickets"),
            name=person(member),
            tier=member.tier,
            points=member.points,
            earlier=len(earlier),
        ),
    ]
    if ticket.refers_to_id is not None:
        lines.append(t(N_("Follows {number}"), number=tickets.number(ticket.refers_to_id)))
    lines.append(text)
    buttons = (Button(t(N_("Take")), f"TAKE:{no}"), Button(t(N_("Resolve")), f"RESOLVE:{no}"))
    reply = Reply("\n".join(lines), buttons=buttons, photo=photo)
    await tell_staff(session, services, "ticket-new", f"ticket:{ticket.id}:new", reply)
