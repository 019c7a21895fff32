"""Rendering a page: the operator's language, the CSRF token and the period in every template,
and headers that let the page load nothing from anywhere (no scripts at all)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from bot.admin.stats import DEFAULT_DAYS, PERIODS
from bot.core.i18n import Translator
from bot.dashboard.i18n import locale_of
from bot.dashboard.session import csrf_token, logged_in
from bot.settings import LOCALES

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LANGUAGE_NAMES = {"zh_CN": "简体中文", "zh_TW": "繁體中文", "en": "English"}


def period_of(request: web.Request) -> int:
    """The selector's period: one of 7/30/90 days, 30 for anything else."""
    raw = request.query.get("days", "")
    return int(raw) if raw in {str(p) for p in PERIODS} else DEFAULT_DAYS


async def render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    locale = await locale_of(request)
    page = {
        "_": Translator(locale),
        "locale": locale,
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LOCALES],
        "csrf": csrf_token(request),
        "logged_in": logged_in(request),
        "periods": PERIODS,
        "days": period_of(request),
        "path": request.path,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, page, status=status)
    response.headers.update(HEADERS)
    return response


PAGE_SIZE = 50  # rows of a list page
PAGE_MAX = 100_000


def page_number(request: web.Request) -> int:
    """The list page asked for (`?page=N`, from 1); 1 for anything else."""
    raw = request.query.get("page", "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) <= PAGE_MAX else 1


async def not_found(request: web.Request, page: str, what: str) -> web.Response:
    """The 404 page of a detail page (an unknown sale, ticket or campaign)."""
    return await render(request, "missing.html", {"page": page, "what": what}, status=404)
