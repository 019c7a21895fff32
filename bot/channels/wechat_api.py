"""Outbound calls to the WeChat Official Account API (aiohttp), sharing one access token.

The token comes from /cgi-bin/stable_token: in normal mode it returns the same token while
it is valid, so processes refreshing at once never invalidate each other's token (plain
/cgi-bin/token would). It is cached for all processes and refreshed under a lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from bot.core.clock import Clock
from bot.core.ports import Cache

log = logging.getLogger("memberbot.wechat")

TOKEN_EXPIRED = {40001, 40014, 42001}
# Outside the follower's 48-hour window, its send quota used up, unfollowed: the same call
# would fail again, so they are answered at once (the outbox decides what happens next).
NOT_RETRIED = {45015, 45047, 43004}
# A template message: unfollowed, or a template id the account does not have (40037).
TEMPLATE_NOT_RETRIED = {43004, 40037}
REFRESH_MARGIN = 300  # seconds before expiry when a cached token stops being used
# A token read from the shared cache is reused in this process this long (real time) without
# asking the cache again: far less than REFRESH_MARGIN, so it is always still valid; one
# another process replaced is answered 40001 and refreshed as any rejected token.
LOCAL_SECONDS = 30.0
MESSAGE_WINDOW = (48 * 3600, 5)  # a message from the follower: 48 h, 5 sends
EVENT_WINDOW = (60, 3)  # a click, follow or scan: 1 minute, 3 sends
NO_WINDOW_SECONDS = 60  # how long the number a send without a window made up is kept
QR_MAX_LIFE = 2592000  # 30 days: the longest a temporary QR code may live
SHOW_QR = "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="


def _dumps(value: Any) -> str:
    """Request bodies: JSON with Chinese as it is, not escaped (as before: WeChat's own
    examples send it so), in UTF-8."""
    return json.dumps(value, ensure_ascii=False)


class WeChatAPIError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"WeChat API error {code}: {message}")
        self.code = code


class OutboundDisabled(Exception):
    """No AppID/secret configured: the bot can answer passively but not send on its own."""


@dataclass(frozen=True)
class SendResult:
    sent: bool
    reason: str = ""  # why not: outside-window, 45015, 45047, 43004, 40037, error


class WeChatAPI:
    def __init__(
        self,
        base: str,
        appid: str | None,
        secret: str | None,
        cache: Cache,
        clock: Clock,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.base = base.rstrip("/")
        self.appid = appid or ""
        self.secret = secret or ""
        self.cache = cache
        self.clock = clock
        self.attempts = attempts
        self.backoff = backoff
        self._http: aiohttp.ClientSession | None = None
        self._token: tuple[str, float] | None = None  # (token, until: time.monotonic())
        self._urls: dict[tuple[str, str | None], URL] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.appid and self.secret)

    async def start(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=10), json_serialize=_dumps
            )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _post(self, path: str, payload: dict[str, Any], token: str | None) -> dict[str, Any]:
        if self._http is None:
            await self.start()
        assert self._http is not None
        # `json=`: aiohttp's JSON payload (Content-Type application/json) made directly, with
        # no lookup in its payload registry and no headers of ours to merge (per send).
        async with self._http.post(self._url(path, token), json=payload) as resp:
            try:
                data = await resp.json(content_type=None)
            except ValueError as exc:  # e.g. a gateway's HTML error page: transient
                raise WeChatAPIError(-2, f"answer is not JSON (HTTP {resp.status})") from exc
        if not isinstance(data, dict):
            raise WeChatAPIError(-2, "answer is not a JSON object")
        return data

    def _url(self, path: str, token: str | None) -> URL:
        """The URL of a call with its token, built once per token rather than per send."""
        url = self._urls.get((path, token))
        if url is None:
            if len(self._urls) >= 32:  # tokens change every two hours: drop the old ones
                self._urls.clear()
            url = URL(f"{self.base}{path}")
            if token:
                url = url.with_query(access_token=token)
            self._urls[(path, token)] = url
        return url

    async def access_token(self, *, stale: str | None = None) -> str:
        """The shared token; `stale` is one the API just rejected, which forces a refresh once."""
        if not self.enabled:
            raise OutboundDisabled("WECHAT_APPID / WECHAT_SECRET are not set")
        mine = self._token
        if mine is not None and mine[0] != stale and time.monotonic() < mine[1]:
            return mine[0]
        self._token = None
        token = await self._shared_token(stale)
        self._token = (token, time.monotonic() + LOCAL_SECONDS)
        return token

    async def _shared_token(self, stale: str | None) -> str:
        key = self.cache.keys.wechat_token(self.appid)
        cached = await self.cache.get(key)
        if cached and cached != stale:
            return cached
        async with self.cache.lock(f"wechat-token:{self.appid}", ttl=20, wait=15):
            cached = await self.cache.get(key)
            if cached and cached != stale:
                return cached  # another worker refreshed while we waited
            data = await self._post(
                "/cgi-bin/stable_token",
                {
                    "grant_type": "client_credential",
                    "appid": self.appid,
                    "secret": self.secret,
                    "force_refresh": stale is not None,
                },
                None,
            )
            token, expires = data.get("access_token"), data.get("expires_in")
            if not isinstance(token, str) or not isinstance(expires, int):
                raise WeChatAPIError(int(data.get("errcode", -1)), str(data.get("errmsg", "")))
            await self.cache.set(key, token, max(expires - REFRESH_MARGIN, 30))
            return token

    async def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with the token; a token WeChat calls expired is refreshed once and retried."""
        mine = self._token  # the token kept in the process, without a call to access_token
        if mine is not None and time.monotonic() < mine[1]:
            token = mine[0]
        else:
            token = await self.access_token()
        data = await self._post(path, payload, token)
        if data.get("errcode") in TOKEN_EXPIRED:
            token = await self.access_token(stale=token)
            data = await self._post(path, payload, token)
        code = int(data.get("errcode", 0) or 0)
        if code:
            raise WeChatAPIError(code, str(data.get("errmsg", "")))
        return data

    async def media(self, media_id: str, limit: int) -> bytes | None:
        """A file a follower sent (an image's MediaId; WeChat keeps it 3 days), or None when
        it is larger than `limit` bytes. WeChat's refusals raise WeChatAPIError."""
        token = await self.access_token()
        found = await self._get_media(media_id, limit, token)
        if isinstance(found, dict) and found.get("errcode") in TOKEN_EXPIRED:
            found = await self._get_media(media_id, limit, await self.access_token(stale=token))
        if isinstance(found, dict):
            raise WeChatAPIError(int(found.get("errcode", -1)), str(found.get("errmsg", "")))
        return found

    async def _get_media(
        self, media_id: str, limit: int, token: str
    ) -> bytes | dict[str, Any] | None:
        if self._http is None:
            await self.start()
        assert self._http is not None
        params = {"access_token": token, "media_id": media_id}
        async with self._http.get(f"{self.base}/cgi-bin/media/get", params=params) as resp:
            if resp.content_type in ("application/json", "text/plain"):
                data = await resp.json(content_type=None)
                return data if isinstance(data, dict) else {"errcode": -2}
            if resp.content_length is not None and resp.content_length > limit:
                return None
            body = await resp.content.read(limit + 1)
        return body if len(body) <= limit else None

    async def open_window(self, openid: str, *, message: bool) -> None:
        """Note that the follower just wrote (48 h, 5 sends) or tapped (1 minute, 3 sends)."""
        seconds, sends = MESSAGE_WINDOW if message else EVENT_WINDOW
        now = int(self.clock.now().timestamp())
        key = self.cache.keys.wechat_window(openid)
        current = await self.cache.get(key)
        if current is not None and unpack_window(int(current))[0] >= now + seconds:
            return
        await self.cache.set(key, str(pack_window(now + seconds, sends)), seconds)

    async def _spend_window(self, openid: str) -> bool:
        """Take one of the window's sends: one INCR of its number, whatever the cache (a
        follower without a window gets a number that decodes as closed, for a minute)."""
        key = self.cache.keys.wechat_window(openid)
        until, sends, spent = unpack_window(await self.cache.incr(key, NO_WINDOW_SECONDS))
        return until > self.clock.now().timestamp() and spent <= sends

    async def send(self, openid: str, message: dict[str, Any]) -> SendResult:
        """A customer-service message inside the follower's window; transient errors are
        retried a few times, WeChat's refusals answered at once."""
        if not await self._spend_window(openid):
            return SendResult(False, "outside-window")
        payload = {"touser": openid, **message}
        return await self._deliver("/cgi-bin/message/custom/send", payload, NOT_RETRIED)

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, str]
    ) -> SendResult:
        """A template message (a service notice): not bound to the follower's window, so it
        spends none of it. `data` maps the template's fields (first, keyword1, ...) to text."""
        payload = {
            "touser": openid,
            "template_id": template_id,
            "data": {name: {"value": value} for name, value in data.items()},
        }
        return await self._deliver("/cgi-bin/message/template/send", payload, TEMPLATE_NOT_RETRIED)

    async def _deliver(self, path: str, payload: dict[str, Any], refusals: set[int]) -> SendResult:
        """POST a message; transient errors are retried a few times, `refusals` (the same
        call would fail again) answered at once with their errcode."""
        for attempt in range(self.attempts):
            try:
                await self.call(path, payload)
                return SendResult(True)
            except WeChatAPIError as exc:
                if exc.code in refusals:
                    return SendResult(False, str(exc.code))
                log.warning("wechat send failed code=%d attempt=%d", exc.code, attempt + 1)
            except (aiohttp.ClientError, TimeoutError):
                log.warning("wechat send failed: network attempt=%d", attempt + 1)
            await asyncio.sleep(self.backoff * 2**attempt)
        return SendResult(False, "error")

    def send_text(self, openid: str, text: str) -> Coroutine[Any, Any, SendResult]:
        """`send` of a text (its coroutine: one await less per push)."""
        return self.send(openid, {"msgtype": "text", "text": {"content": text}})

    async def send_image(self, openid: str, media_id: str) -> SendResult:
        return await self.send(openid, {"msgtype": "image", "image": {"media_id": media_id}})

    async def create_qrcode(
        self, scene: str, *, permanent: bool, expire_seconds: int = QR_MAX_LIFE
    ) -> dict[str, Any]:
        """A parametric QR code with a scene string (for invites); returns ticket and url."""
        payload: dict[str, Any] = {
            "action_name": "QR_LIMIT_STR_SCENE" if permanent else "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": scene}},
        }
        if not permanent:
            payload["expire_seconds"] = expire_seconds
        return await self.call("/cgi-bin/qrcode/create", payload)

    async def create_menu(self, menu: dict[str, Any]) -> None:
        await self.call("/cgi-bin/menu/create", menu)


SPENT_SPAN = 100_000


def pack_window(until: int, sends: int, spent: int = 0) -> int:
    """A follower's window as one number in the cache, so that taking a send is one atomic
    INCR: until when (Unix seconds), how many sends it allows (at most 9) and how many were
    taken (fewer than 100,000: a refused send still counts, and a thousand refusals would carry
    into `sends` and open the window again). The number stays below 2**53, which the cache's
    Lua scripts hold exactly (their numbers are doubles)."""
    return (until * 10 + sends) * SPENT_SPAN + spent


def unpack_window(number: int) -> tuple[int, int, int]:
    """(until, sends, spent) of pack_window; a number INCR made from nothing is (0, 0, 1)."""
    rest, spent = divmod(number, SPENT_SPAN)
    until, sends = divmod(rest, 10)
    return until, sends, spent


def qrcode_image_url(ticket: str) -> str:
    """Where WeChat shows a QR code's image: its ticket, URL-quoted (tickets hold + / =)."""
    return SHOW_QR + quote(ticket, safe="")
