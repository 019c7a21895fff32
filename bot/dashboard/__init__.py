"""/dashboard: the operators' console, server-rendered (aiohttp-jinja2), charts as inline SVG.

A sub-application with its own guard (a login session, see session.py), mounted on the
server's application by `setup(app, services)`.
"""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.core.context import Services
from bot.dashboard import auth, campaigns, members, pages, rewards, sales, tickets
from bot.dashboard.session import require_login, session_layer

PREFIX = "/dashboard"


def create_dashboard(services: Services) -> web.Application:
    admin_token = services.settings.admin_token
    dash = web.Application(middlewares=[session_layer(admin_token, PREFIX), require_login])
    aiohttp_jinja2.setup(
        dash,
        loader=jinja2.PackageLoader("bot.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    for part in (auth, pages, members, sales, rewards, tickets, campaigns):
        part.setup(dash)
    return dash


async def _to_overview(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect(PREFIX + "/")


def setup(app: web.Application, services: Services) -> None:
    """Mount the dashboard on the server's application."""
    app.router.add_get(PREFIX, _to_overview)
    app.add_subapp(PREFIX, create_dashboard(services))
