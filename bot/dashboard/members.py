"""The dashboard's members: the newest, a search by app account, one member's page (their
accounts, tier and balance, ledger, complaints, vouchers, flash-sale claims, communities)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.admin import members as admin_members
from bot.admin.errors import AdminError
from bot.core.clock import local_day
from bot.dashboard import words
from bot.dashboard.i18n import translator
from bot.dashboard.pages import tier_names
from bot.dashboard.render import not_found, render
from bot.dashboard.session import CSRF_FIELD, csrf_ok
from bot.http.common import core_of
from handlers.ticket_basics import CATEGORY_LABELS
from storage import console_member, directory, tickets

CHANNELS = ("telegram", "wechat", "console")


async def listing(request: web.Request, *, not_found: str | None = None) -> web.Response:
    services = core_of(request).services
    async with services.db.reader() as session:
        newest = await directory.newest(session, 50)
    t = await translator(request)
    context = {
        "page": "members",
        "newest": newest,
        "channels": CHANNELS,
        "not_found": not_found,
        "tier_names": tier_names(t, [t_.name for t_ in services.rules.tiers]),
    }
    return await render(request, "members.html", context, status=404 if not_found else 200)


async def members_page(request: web.Request) -> web.Response:
    return await listing(request)


async def search(request: web.Request) -> web.StreamResponse:
    """POST channel + app id: to the member's page, or the list again saying none was found."""
    form = await request.post()
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        raise web.HTTPForbidden(text="bad or missing CSRF token")
    channel = str(form.get("channel", ""))
    external_id = str(form.get("external_id", "")).strip()
    try:
        await admin_members.find(core_of(request).services, channel, external_id)
    except AdminError:
        return await listing(request, not_found=f"{channel} {external_id}")
    url = request.app.router["member"].url_for(channel=channel, external_id=external_id)
    raise web.HTTPSeeOther(url)


async def member_page(request: web.Request) -> web.StreamResponse:
    """A member found by one of their app accounts."""
    services = core_of(request).services
    channel, external_id = request.match_info["channel"], request.match_info["external_id"]
    async with services.db.reader() as session:
        member_id = await console_member.member_of_account(session, channel, external_id)
        if member_id is not None:
            return await _show(request, session, member_id)
    return await listing(request, not_found=f"{channel} {external_id}")


async def member_by_number(request: web.Request) -> web.StreamResponse:
    """A member by their number: the only way to a member who asked to be forgotten (they
    have no app account left); a linked-away account leads to the member it joined."""
    raw = request.match_info["member_id"]
    async with core_of(request).services.db.reader() as session:
        if raw.isascii() and raw.isdigit() and len(raw) <= 18:
            return await _show(request, session, int(raw))
    return await not_found(request, "members", f"#{raw}")


async def _show(request: web.Request, session: AsyncSession, member_id: int) -> web.StreamResponse:
    services = core_of(request).services
    now = services.clock.now()
    found = await console_member.profile(session, member_id, local_day(now, services.settings.tz))
    if found is None:
        return await not_found(request, "members", f"#{member_id}")
    member = found.member
    if member.merged_into_id is not None:
        url = request.app.router["member_number"].url_for(member_id=str(member.merged_into_id))
        raise web.HTTPSeeOther(url)
    accounts = await console_member.accounts(session, member_id)
    t = await translator(request)
    upcoming = services.rules.next_tier(member.tier)
    context = {
        "page": "members",
        "m": member,
        "streak": found.streak,
        # No account left and not linked away: the member was forgotten (their personal
        # data erased); the page then shows numbers only.
        "erased": accounts.total == 0,
        "accounts": accounts,
        "ledger": await console_member.ledger(session, member_id),
        "tickets": await console_member.tickets(session, member_id),
        "vouchers": await console_member.vouchers(session, member_id, now),
        "claims": await console_member.claims(session, member_id),
        "communities": await console_member.communities(session, member_id),
        "discount": _percent_off(services.rules.tier(member.tier).discount),
        "upcoming": upcoming,
        "tier_names": tier_names(t, [r.name for r in services.rules.tiers]),
        "ticket_states": words.TICKET_STATES,
        "voucher_states": words.VOUCHER_STATES,
        "membership_states": words.MEMBERSHIP_STATES,
        "ledger_kinds": words.LEDGER_KINDS,
        "categories": CATEGORY_LABELS,
        "number": tickets.number,
        "default_locale": services.settings.default_locale,
    }
    return await render(request, "member.html", context)


def _percent_off(discount: float | None) -> str | None:
    """What the tier's till discount takes off, as a percentage (0.98: "2")."""
    return None if discount is None else f"{round((1 - discount) * 100, 2):g}"


def setup(dash: web.Application) -> None:
    dash.router.add_get("/members", members_page, name="members")
    dash.router.add_post("/members", search, name="search")
    dash.router.add_get("/members/{member_id}", member_by_number, name="member_number")
    dash.router.add_get("/members/{channel}/{external_id}", member_page, name="member")
