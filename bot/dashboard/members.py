"""The dashboard's members: the newest, a search by app account, one member with their ledger."""

from __future__ import annotations

from aiohttp import web

from bot.admin import members as admin_members
from bot.admin.errors import AdminError
from bot.dashboard.i18n import translator
from bot.dashboard.pages import tier_names
from bot.dashboard.render import render
from bot.dashboard.session import CSRF_FIELD, csrf_ok
from bot.http.common import core_of
from storage import directory

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


async def member_page(request: web.Request) -> web.Response:
    services = core_of(request).services
    channel, external_id = request.match_info["channel"], request.match_info["external_id"]
    try:
        member = await admin_members.member_json(services, channel, external_id)
        entries = await admin_members.ledger_page(services, channel, external_id, 100)
    except AdminError:
        return await listing(request, not_found=f"{channel} {external_id}")
    t = await translator(request)
    context = {
        "page": "members",
        "member": member,
        "entries": entries,
        "tier_names": tier_names(t, [member["tier"]]),
    }
    return await render(request, "member.html", context)


def setup(dash: web.Application) -> None:
    dash.router.add_get("/members", members_page, name="members")
    dash.router.add_post("/members", search, name="search")
    dash.router.add_get("/members/{channel}/{external_id}", member_page, name="member")
