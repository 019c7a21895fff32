"""A local fake of WeChat's Official Account API: a real aiohttp server on loopback.

It answers the URLs the bot calls, with the JSON the real API sends (errcode/errmsg on errors):
  POST /cgi-bin/stable_token           access token (normal mode returns the same one while valid)
  POST /cgi-bin/message/custom/send    customer-service message (scriptable refusals)
  POST /cgi-bin/message/template/send  template message (40037 for an id not added by
                                       `add_template`; the same scriptable refusals)
  POST /cgi-bin/qrcode/create          parametric QR code
  POST /cgi-bin/menu/create            custom menu
Tests read what it saw (`token_calls`, `sent`, `send_attempts`, `templates_sent`, `menus`,
`qrcodes`, and the `tickets` it issued) and script it (`refuse`, `fail_next`, `expire_token`,
`fail_qrcodes`, `add_template`).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

APPID = "wx1234567890abcdef"
SECRET = "0123456789abcdef0123456789abcdef"

ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40037: "invalid template_id",
    40053: "invalid action info",
    40125: "invalid appsecret",
    41001: "access_token missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44002: "empty post data",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
    47003: "argument invalid! data.keyword1.value invalid",
}
QR_ACTIONS = {"QR_SCENE", "QR_STR_SCENE", "QR_LIMIT_SCENE", "QR_LIMIT_STR_SCENE"}
MAX_QR_EXPIRE = 2592000


def _error(code: int) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": ERRMSG.get(code, "error")})


@dataclass(frozen=True)
class TokenCall:
    appid: str
    force_refresh: bool


class FakeWeChat:
    """WeChat's API as the bot sees it; `await fake.start()` and point WECHAT_API_BASE at `url`."""

    def __init__(self, appid: str = APPID, secret: str = SECRET, expires_in: int = 7200) -> None:
        self.appid = appid
        self.secret = secret
        self.expires_in = expires_in
        self.token: str | None = None  # the one valid token, as the real server keeps it
        self.retired: dict[str, int] = {}  # old token → 40001 (replaced) or 42001 (expired)
        self.token_calls: list[TokenCall] = []
        self.send_attempts: list[dict[str, Any]] = []  # every send with a valid token
        self.sent: list[dict[str, Any]] = []  # the ones WeChat accepted
        self.templates: set[str] = set()  # the template ids the account has (add_template)
        self.templates_sent: list[dict[str, Any]] = []  # template messages WeChat accepted
        self._msgids = 200228000
        self.menus: list[dict[str, Any]] = []
        self.qrcodes: list[dict[str, Any]] = []
        self.tickets: list[str] = []
        self.media: dict[str, bytes] = {}  # add_media: images followers sent, by MediaId
        self.media_fetches: list[str] = []
        self._refusals: dict[str, deque[int]] = defaultdict(deque)
        self._failures: deque[int] = deque()
        self._qr_failures: deque[int] = deque()
        self._outages = 0
        self._server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake is not started"
        return str(self._server.make_url("")).rstrip("/")

    def texts_to(self, openid: str) -> list[str]:
        return [
            m["text"]["content"]
            for m in self.sent
            if m["touser"] == openid and m["msgtype"] == "text"
        ]

    def notices_to(self, openid: str) -> list[tuple[str, dict[str, str]]]:
        """The template messages `openid` got: (template id, field → value)."""
        return [
            (m["template_id"], {k: v["value"] for k, v in m["data"].items()})
            for m in self.templates_sent
            if m["touser"] == openid
        ]

    # -- scripting -----------------------------------------------------------------------

    def add_template(self, template_id: str) -> None:
        """The account picked this template in its console: sends with its id are accepted."""
        self.templates.add(template_id)

    def refuse(self, openid: str, *codes: int) -> None:
        """The next sends to `openid` get these errcodes, one per call, in order."""
        self._refusals[openid].extend(codes)

    def fail_next(self, count: int, code: int = -1) -> None:
        """The next `count` sends (to anyone) get `code`, e.g. WeChat's transient -1."""
        self._failures.extend([code] * count)

    def fail_qrcodes(self, count: int, code: int = -1) -> None:
        """The next `count` qrcode/create calls get `code`."""
        self._qr_failures.extend([code] * count)

    def gateway_errors(self, count: int) -> None:
        """The next `count` sends get an HTML 502 from the gateway instead of JSON."""
        self._outages += count

    def rotate_token(self) -> None:
        """Someone else force-refreshed: the current token is replaced (calls with it: 40001)."""
        if self.token is not None:
            self.retired[self.token] = 40001
        self.token = "TOKEN-" + secrets.token_hex(16)

    def expire_token(self) -> None:
        """The current token runs out now: calls with it get 42001 until a new one is issued."""
        if self.token is not None:
            self.retired[self.token] = 42001
            self.token = None

    # -- server --------------------------------------------------------------------------

    async def start(self) -> FakeWeChat:
        app = web.Application()
        app.router.add_post("/cgi-bin/stable_token", self._stable_token)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        app.router.add_post("/cgi-bin/message/template/send", self._template_send)
        app.router.add_post("/cgi-bin/qrcode/create", self._qrcode_create)
        app.router.add_post("/cgi-bin/menu/create", self._menu_create)
        app.router.add_get("/cgi-bin/media/get", self._media_get)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

    @staticmethod
    async def _json(request: web.Request) -> dict[str, Any] | None:
        try:
            data = json.loads(await request.read())
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _token_error(self, request: web.Request) -> web.Response | None:
        """The access_token query parameter as the real API checks it, or None when valid."""
        given = request.query.get("access_token")
        if not given:
            return _error(41001)
        if given != self.token:
            return _error(self.retired.get(given, 40001))
        return None

    def add_media(self, media_id: str, data: bytes) -> None:
        """An image a follower sent, served by media/get under its MediaId."""
        self.media[media_id] = data

    async def _media_get(self, request: web.Request) -> web.Response:
        refused = self._token_error(request)
        if refused is not None:
            return refused
        media_id = request.query.get("media_id", "")
        if media_id not in self.media:
            return _error(40007)  # invalid media_id (or older than 3 days)
        self.media_fetches.append(media_id)
        return web.Response(body=self.media[media_id], content_type="image/jpeg")

    async def _stable_token(self, request: web.Request) -> web.Response:
        data = await self._json(request)
        if data is None:
            return _error(47001)
        if data.get("grant_type") != "client_credential":
            return _error(40002)
        force = bool(data.get("force_refresh", False))
        self.token_calls.append(TokenCall(str(data.get("appid")), force))
        if data.get("appid") != self.appid:
            return _error(40013)
        if data.get("secret") != self.secret:
            return _error(40125)
        if force or self.token is None:
            self.rotate_token()
        return web.json_response({"access_token": self.token, "expires_in": self.expires_in})

    async def _custom_send(self, request: web.Request) -> web.Response:
        if self._outages:
            self._outages -= 1
            return web.Response(status=502, text="<html>502 Bad Gateway</html>")
        refused = self._token_error(request)
        if refused is not None:
            return refused
        data = await self._json(request)
        if data is None:
            return _error(44002)
        openid = str(data.get("touser", ""))
        if not openid:
            return _error(40003)
        msgtype = data.get("msgtype")
        if msgtype not in ("text", "image") or not isinstance(data.get(msgtype), dict):
            return _error(40008)
        self.send_attempts.append(data)
        if self._failures:
            return _error(self._failures.popleft())
        if self._refusals[openid]:
            return _error(self._refusals[openid].popleft())
        self.sent.append(data)
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _template_send(self, request: web.Request) -> web.Response:
        refused = self._token_error(request)
        if refused is not None:
            return refused
        data = await self._json(request)
        if data is None:
            return _error(44002)
        openid = str(data.get("touser", ""))
        if not openid:
            return _error(40003)
        fields = data.get("data")
        if not isinstance(fields, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("value"), str) for v in fields.values()
        ):
            return _error(47001)
        self.send_attempts.append(data)
        if data.get("template_id") not in self.templates:
            return _error(40037)
        if self._failures:
            return _error(self._failures.popleft())
        if self._refusals[openid]:
            return _error(self._refusals[openid].popleft())
        self.templates_sent.append(data)
        self._msgids += 1
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": self._msgids})

    async def _qrcode_create(self, request: web.Request) -> web.Response:
        refused = self._token_error(request)
        if refused is not None:
            return refused
        data = await self._json(request)
        if data is None:
            return _error(44002)
        action = data.get("action_name")
        scene = (data.get("action_info") or {}).get("scene") or {}
        if action not in QR_ACTIONS or not (scene.get("scene_str") or scene.get("scene_id")):
            return _error(40053)
        if self._qr_failures:
            return _error(self._qr_failures.popleft())
        self.qrcodes.append(data)
        # Real tickets are standard base64 with "=" padding (and often "+" or "/"): "gQH47j...=="
        ticket = base64.b64encode(b"\x81\x01" + secrets.token_bytes(50)).decode()
        self.tickets.append(ticket)
        answer: dict[str, Any] = {
            "ticket": ticket,
            "url": f"http://weixin.qq.com/q/{secrets.token_urlsafe(16)[:22]}",
        }
        if action in ("QR_SCENE", "QR_STR_SCENE"):
            answer["expire_seconds"] = min(int(data.get("expire_seconds", 60)), MAX_QR_EXPIRE)
        return web.json_response(answer)

    async def _menu_create(self, request: web.Request) -> web.Response:
        refused = self._token_error(request)
        if refused is not None:
            return refused
        data = await self._json(request)
        if data is None or not isinstance(data.get("button"), list):
            return _error(44002)
        self.menus.append(data)
        return web.json_response({"errcode": 0, "errmsg": "ok"})
