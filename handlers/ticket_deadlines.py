"""Complaint deadlines, every minute: a warning at `warn_at` of the first-response time, an
escalation at the breach (with the rules' apology points), closing what was resolved long ago.

Each ticket is warned and escalated once however many processes run this at once: a
conditional UPDATE decides who does it, and the pushes and the ledger entry it causes carry
keys per ticket, in the same transaction.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Services
from bot.core.i18n import N_, Translator
from bot.core.messages import Reply
from bot.jobs.pushes import push_to_member
from handlers import ticket_basics as basics
from storage import ledger, roles, tickets
from storage.models import Ticket

BREACH_REASON = "complaint-breach"


async def hook(services: Services) -> int:
    """Warn, escalate, close what is due now; how many tickets it did something to."""
    now = services.clock.now()
    async with services.db.reader() as session:
        to_warn = await tickets.due_ids(session, "warn_at", now)
        to_escalate = await tickets.due_ids(session, "first_response_due", now)
    done = 0
    for ticket_id in to_warn:
        async with services.db.transaction() as session:
            if await tickets.mark_warned(session, ticket_id, now):
                await _warn(session, services, await _ticket(session, ticket_id))
                done += 1
    for ticket_id in to_escalate:
        async with services.db.transaction() as session:
            if await tickets.mark_escalated(session, ticket_id, now):
                await _escalate(session, services, await _ticket(session, ticket_id))
                done += 1
    cutoff = now - timedelta(days=services.rules.complaints.reopen_days)
    async with services.db.transaction() as session:
        for ticket_id in await tickets.close_due(session, now, cutoff):
            await tickets.add_event(session, ticket_id, "system", "closed", now)
            done += 1
    if done:
        services.pushes.wake()
    return done


async def _ticket(session: AsyncSession, ticket_id: int) -> Ticket:
    ticket = await tickets.get(session, ticket_id)
    assert ticket is not None
    return ticket


async def _warn(session: AsyncSession, services: Services, ticket: Ticket) -> None:
    now = services.clock.now()
    no = tickets.number(ticket.id)
    due = basics.local_time(services, ticket.first_response_due)
    await tickets.add_event(session, ticket.id, "system", "warned: first reply due soon", now)

    def render(t: Translator) -> Reply:
        return Reply(t(N_("⏰ {number} needs a first reply by {due}."), number=no, due=due))

    if ticket.assignee_id is not None:
        key = f"ticket:{ticket.id}:warn:handler"
        await push_to_member(session, services, ticket.assignee_id, "ticket-warning", key, render)
    reply = render(basics.staff_t(services))
    await basics.tell_staff(session, services, "ticket-warning", f"ticket:{ticket.id}:warn", reply)


async def _escalate(session: AsyncSession, services: Services, ticket: Ticket) -> None:
    """Tell the admins and the staff chat; credit the member the apology points, once."""
    now = services.clock.now()
    no = tickets.number(ticket.id)
    await tickets.add_event(session, ticket.id, "system", "escalated: first reply overdue", now)
    services.metrics.ticket_breaches.inc()

    def render(t: Translator) -> Reply:
        return Reply(
            t(
                N_("🚨 {number} missed its first-reply deadline; reassign it with /assign."),
                number=no,
            )
        )

    admins = {r.member_id for r in await roles.listing(session) if r.role == roles.ADMIN}
    for admin_id in sorted(admins):
        key = f"ticket:{ticket.id}:escalated:{admin_id}"
        await push_to_member(session, services, admin_id, "ticket-escalated", key, render)
    reply = render(basics.staff_t(services))
    await basics.tell_staff(session, services, "ticket-escalated", f"ticket:{ticket.id}:esc", reply)
    points = services.rules.complaints.breach_points
    if points <= 0:
        return
    moved = await ledger.earn(
        session,
        ticket.member_id,
        points,
        BREACH_REASON,
        f"complaint:{ticket.id}:breach",
        now,
        expiry_days=services.rules.points.expiry_days,
    )
    if not moved.applied:
        return

    def apology(t: Translator) -> Reply:
        return Reply(
            t(
                N_("Sorry: we did not answer {number} in time. {points} points are yours."),
                number=no,
                points=points,
            ),
            private=True,
        )

    key = f"ticket:{ticket.id}:apology"
    await push_to_member(session, services, ticket.member_id, "ticket-apology", key, apology)
