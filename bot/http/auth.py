"""Who may call what: operators by bearer token, the shop by an HMAC signature of the body.

Each guard belongs to a route group, not to a path: the operator API is a sub-application
behind `require_bearer`, the shop's routes are wrapped in `signed` one by one. (The
dashboard's session, when it comes, is a third guard beside these.)
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from aiohttp import web

from bot.http.common import Handler, core_of, error
from bot.http.limits import read_body

SIGNATURE_HEADER = "X-Memberbot-Signature"


def bearer_ok(request: web.Request, token: str | None) -> bool:
    """Constant-time check of `Authorization: Bearer <token>`; no token configured refuses all."""
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if token is None or scheme.lower() != "bearer" or not given:
        return False
    # surrogateescape: a header with bytes that are not UTF-8 is a wrong token, not a crash.
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode())


@web.middleware
async def require_bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every route of the application it guards needs MEMBERBOT_ADMIN_TOKEN."""
    if not bearer_ok(request, core_of(request).services.settings.admin_token):
        return error(401, "missing or wrong bearer token")
    return await handler(request)


def signature_ok(secret: str | None, body: bytes, header: str) -> bool:
    """`sha256=<hex HMAC-SHA256 of the exact body>` under MEMBERBOT_SHOP_SECRET."""
    if not secret or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = header[len("sha256=") :].strip().lower()
    # compare_digest refuses non-ASCII text with a TypeError: such a header is simply wrong.
    return given.isascii() and hmac.compare_digest(given, expected)


def signed(handler: Handler) -> Handler:
    """A shop route: the body must carry the shop's signature, else 403 before anything runs."""

    @functools.wraps(handler)
    async def check(request: web.Request) -> web.StreamResponse:
        body = await read_body(request)
        secret = core_of(request).services.settings.shop_secret
        if not signature_ok(secret, body, request.headers.get(SIGNATURE_HEADER, "")):
            return error(403, "bad or missing signature")
        return await handler(request)

    return check
