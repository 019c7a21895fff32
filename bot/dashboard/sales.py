"""The dashboard's flash sales: every sale with its state, claimed/stock, winners and how fast
it sold out; a sale's page with its claims."""

from __future__ import annotations

from aiohttp import web

from bot.dashboard import words
from bot.dashboard.render import PAGE_SIZE, not_found, page_number, render
from bot.http.common import core_of
from storage import console
from storage.flashsales import STATES


async def sales_page(request: web.Request) -> web.Response:
    state = request.query.get("state")
    if state not in STATES:
        state = None
    async with core_of(request).services.db.reader() as session:
        found = await console.flash_sales(session, page_number(request), PAGE_SIZE, state)
    context = {
        "page": "flashsales",
        "sales": found,
        "state": state,
        "states": words.SALE_STATES,
        "pager_query": f"state={state}&" if state else "",
    }
    return await render(request, "flashsales.html", context)


async def sale_page(request: web.Request) -> web.Response:
    code = request.match_info["code"]
    async with core_of(request).services.db.reader() as session:
        row = await console.flash_sale(session, code)
        if row is None:
            return await not_found(request, "flashsales", code)
        claims = await console.sale_claims(session, row.sale.id, page_number(request), PAGE_SIZE)
    context = {
        "page": "flashsales",
        "s": row,
        "claims": claims,
        "states": words.SALE_STATES,
        "pager_query": "",
    }
    return await render(request, "flashsale.html", context)


def setup(dash: web.Application) -> None:
    dash.router.add_get("/flashsales", sales_page, name="flashsales")
    dash.router.add_get("/flashsales/{code}", sale_page, name="flashsale")
