"""Log in with the admin token, log out; both forms carry the session's CSRF token."""

from __future__ import annotations

from aiohttp import web

from bot.dashboard.render import render
from bot.dashboard.session import CSRF_FIELD, csrf_ok, log_in, log_out, token_ok


async def login_form(request: web.Request) -> web.Response:
    return await render(request, "login.html", {"page": "login", "failed": False})


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        raise web.HTTPForbidden(text="bad or missing CSRF token")
    if not token_ok(request, form.get("token")):
        context = {"page": "login", "failed": True}
        return await render(request, "login.html", context, status=401)
    log_in(request)
    raise web.HTTPSeeOther(request.app.router["overview"].url_for())


async def logout(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        raise web.HTTPForbidden(text="bad or missing CSRF token")
    log_out(request)
    raise web.HTTPSeeOther(request.app.router["login"].url_for())


def setup(dash: web.Application) -> None:
    dash.router.add_get("/login", login_form, name="login")
    dash.router.add_post("/login", login, name="login_post")
    dash.router.add_post("/logout", logout, name="logout")
