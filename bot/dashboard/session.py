"""Who may see the dashboard: the admin token, once, in a login form → a session cookie
(encrypted and signed with Fernet, HttpOnly, SameSite=Strict); every form carries the
session's CSRF token.

The cookie key is derived from the admin token, so changing the token logs everyone out;
with no token configured the dashboard refuses everyone (as /api does). Fernet's timestamp
bounds a session's life on the server's side too, whatever the browser keeps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from cryptography.fernet import Fernet, InvalidToken

from bot.http.auth import bearer_ok
from bot.http.common import Handler, core_of

COOKIE = "memberbot_dashboard"
MAX_AGE = 12 * 3600  # an operator logs in again after half a day
PUBLIC = frozenset({"login", "login_post"})  # route names reachable without a session
CSRF_FIELD = "csrf"


class Session(dict[str, Any]):
    """What the cookie holds; `changed` says whether it must be written back."""

    changed = False
    ended = False

    def put(self, key: str, value: Any) -> None:
        if self.get(key) != value:
            self[key] = value
            self.changed = True

    def end(self) -> None:
        self.clear()
        self.ended = True


SESSION = web.RequestKey("dashboard_session", Session)


def cookie_key(admin_token: str | None) -> bytes:
    """A Fernet key bound to the admin token (random when there is none: no session can then
    be read after a restart, and nobody logs in anyway)."""
    raw = (
        secrets.token_bytes(32)
        if admin_token is None
        else hmac.new(
            admin_token.encode(), b"memberbot dashboard session v1", hashlib.sha256
        ).digest()
    )
    return base64.urlsafe_b64encode(raw)


def _read(fernet: Fernet, raw: str | None) -> Session:
    if not raw:
        return Session()
    try:
        data = json.loads(fernet.decrypt(raw.encode(), ttl=MAX_AGE))
    except (InvalidToken, ValueError):
        return Session()  # forged, stale or from an earlier token: a fresh start
    return Session(data) if isinstance(data, dict) else Session()


def _write(
    fernet: Fernet, session: Session, response: web.StreamResponse, path: str, secure: bool
) -> None:
    if session.ended:
        response.del_cookie(COOKIE, path=path)
        return
    value = fernet.encrypt(json.dumps(dict(session)).encode()).decode()
    # Secure whenever the page came over HTTPS, so the browser never sends it in clear.
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE,
        path=path,
        httponly=True,
        samesite="Strict",
        secure=secure,
    )


def session_layer(admin_token: str | None, path: str) -> Middleware:
    """Load the session before the handler; write it back (redirects included) if changed."""
    fernet = Fernet(cookie_key(admin_token))

    @web.middleware
    async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
        session = _read(fernet, request.cookies.get(COOKIE))
        request[SESSION] = session
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if session.changed or session.ended:
                _write(fernet, session, exc, path, request.secure)
            raise
        if session.changed or session.ended:
            _write(fernet, session, response, path, request.secure)
        return response

    return sessions


def session_of(request: web.Request) -> Session:
    return request[SESSION]


def csrf_token(request: web.Request) -> str:
    """The session's CSRF token, made on first use."""
    session = session_of(request)
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session.put(CSRF_FIELD, token)
    return token


def csrf_ok(request: web.Request, given: object) -> bool:
    expected = session_of(request).get(CSRF_FIELD)
    return (
        isinstance(expected, str)
        and isinstance(given, str)
        and hmac.compare_digest(expected.encode(), given.encode())
    )


def logged_in(request: web.Request) -> bool:
    return session_of(request).get("admin") is True


def token_ok(request: web.Request, given: object) -> bool:
    expected = core_of(request).services.settings.admin_token
    if expected is None or not isinstance(given, str):
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), expected.encode())


def log_in(request: web.Request) -> None:
    """A fresh CSRF token at login: nothing seen before the login serves after it."""
    session = session_of(request)
    session.put("admin", True)
    session.put(CSRF_FIELD, secrets.token_urlsafe(32))


def log_out(request: web.Request) -> None:
    session_of(request).end()


@web.middleware
async def require_login(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page but the login form needs the session (or the bearer token, for scripts)."""
    route = request.match_info.route.name
    if route in PUBLIC or bearer_ok(request, core_of(request).services.settings.admin_token):
        return await handler(request)
    if logged_in(request):
        return await handler(request)
    if request.method == "GET":
        raise web.HTTPSeeOther(request.app.router["login"].url_for())
    raise web.HTTPForbidden(text="log in first")
