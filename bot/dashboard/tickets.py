"""The dashboard's complaints: open tickets, missed deadlines, satisfaction scores; a ticket's
page with its conversation and audit trail."""

from __future__ import annotations

from aiohttp import web

from bot.dashboard import words
from bot.dashboard.render import PAGE_SIZE, not_found, page_number, render
from bot.http.common import core_of
from handlers.ticket_basics import CATEGORY_LABELS
from storage import console, tickets


async def tickets_page(request: web.Request) -> web.Response:
    services = core_of(request).services
    which = request.query.get("show", "open")
    if which not in console.TICKET_FILTERS:
        which = "open"
    now = services.clock.now()
    async with services.db.reader() as session:
        summary = await console.ticket_summary(session, now)
        found = await console.tickets(session, now, which, page_number(request), PAGE_SIZE)
    context = {
        "page": "tickets",
        "summary": summary,
        "tickets": found,
        "show": which,
        "filters": words.TICKET_FILTERS,
        "states": words.TICKET_STATES,
        "categories": CATEGORY_LABELS,
        "number": tickets.number,
        "pager_query": f"show={which}&",
    }
    return await render(request, "tickets.html", context)


async def ticket_page(request: web.Request) -> web.Response:
    services = core_of(request).services
    raw = request.match_info["number"]
    ticket_id = tickets.parse_number(raw)
    found = None
    if ticket_id is not None:
        async with services.db.reader() as session:
            found = await console.ticket(session, ticket_id, services.clock.now())
    if found is None:
        return await not_found(request, "tickets", raw)
    context = {
        "page": "tickets",
        "t": found,
        "states": words.TICKET_STATES,
        "senders": words.SENDERS,
        "categories": CATEGORY_LABELS,
        "number": tickets.number,
    }
    return await render(request, "ticket.html", context)


def setup(dash: web.Application) -> None:
    dash.router.add_get("/tickets", tickets_page, name="tickets")
    dash.router.add_get("/tickets/{number}", ticket_page, name="ticket")
