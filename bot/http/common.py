"""Helpers shared by the HTTP routes: the core in the app, JSON errors, auth, body parsing."""

from __future__ import annotations

import hmac
import json
import logging
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.app import Core

CORE = web.AppKey("core", Core)
log = logging.getLogger("memberbot.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def core_of(request: web.Request) -> Core:
    return request.app[CORE]


def plain_text(value: str) -> bool:
    """No control characters or lone surrogates: no app sends them in ids, and the database
    drivers refuse them (NUL on PostgreSQL, surrogates on both)."""
    return not any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


async def read_json_object(request: web.Request) -> tuple[bytes, dict[str, Any]]:
    """The raw body and its JSON object; a malformed or non-object body is a 400."""
    body = await request.read()
    try:
        data = json.loads(body)
    # ValueError covers bad UTF-8, bad JSON and integers past Python's digit limit;
    # RecursionError a body of thousands of nested brackets.
    except (ValueError, RecursionError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "malformed JSON"}), content_type="application/json"
        ) from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "expected a JSON object"}), content_type="application/json"
        )
    return body, data


def bearer_ok(request: web.Request, token: str | None) -> bool:
    """Constant-time check of `Authorization: Bearer <token>`; no token configured refuses all."""
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if token is None or scheme.lower() != "bearer" or not given:
        return False
    # surrogateescape: a header with bytes that are not UTF-8 is a wrong token, not a crash.
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode())


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request; an unexpected failure is logged and answered 500 without a trace."""
    core = request.app[CORE]
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        core.services.metrics.http_requests.labels(name, str(exc.status)).inc()
        raise
    except Exception:
        log.exception("request failed route=%s", name)
        core.services.metrics.http_requests.labels(name, "500").inc()
        return error(500, "internal error")
    core.services.metrics.http_requests.labels(name, str(response.status)).inc()
    return response
