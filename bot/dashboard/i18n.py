"""The operator's language: their pick (kept in the session), else their browser's, else the
deployment's default."""

from __future__ import annotations

from aiohttp import web

from bot.core.i18n import Translator, normalise_hint
from bot.dashboard.session import session_of
from bot.http.common import core_of
from bot.settings import LOCALES


async def locale_of(request: web.Request) -> str:
    session = session_of(request)
    asked = request.query.get("lang")
    if asked in LOCALES:
        session.put("locale", asked)
        return asked
    kept = session.get("locale")
    if kept in LOCALES:
        return str(kept)
    header = request.headers.get("Accept-Language", "")
    first = header.split(",", 1)[0].split(";", 1)[0].strip()
    return normalise_hint(first) or core_of(request).services.settings.default_locale


async def translator(request: web.Request) -> Translator:
    return Translator(await locale_of(request))
