"""A local fake of the Telegram Bot API: a real aiohttp server on loopback.

It answers `POST /bot<token>/<method>` (form-encoded with JSON-encoded values, as
python-telegram-bot sends them, or a JSON body) with Telegram-shaped JSON
(`{"ok": true, "result": ...}`, or `{"ok": false, "error_code": ..., "description": ...}`):
  getMe, sendMessage, answerCallbackQuery, setWebhook, deleteWebhook, setMyCommands,
  getUpdates (long polling over `queue_update`, with short waits), close, logOut,
  createChatInviteLink, revokeChatInviteLink, approveChatJoinRequest, declineChatJoinRequest,
  banChatMember, unbanChatMember, editMessageText.
`running_fake()` is an async context manager around a started fake.
Tests read what it saw (`calls`, `sent`, `answered`, `webhooks`, `commands`, `links`) and script
refusals: `fail_next(k, code)` for the next k calls of a method, `refuse(chat_id, code)`
for every send to one chat. `await fake.wait_sent(n)` waits for n sendMessage calls.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import secrets
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

TOKEN = "123:ABC"
BOT_ID = 123
BOT_USERNAME = "memberbot_test_bot"

TOO_MANY = 429
FORBIDDEN = 403
ERRORS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    429: "Too Many Requests: retry after 1",
}
# Tags the Bot API accepts in parse_mode HTML; anything else is a 400 "can't parse entities".
HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
    "a", "code", "pre", "blockquote", "tg-emoji",
}  # fmt: skip
_TAG = re.compile(r"</?([a-z-]+)(?:\s[^<>]*)?>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
MAX_TEXT = 4096
FILE_LIMIT = 20 * 1024 * 1024  # getFile refuses bigger files
POLL_WAIT_CAP = 0.2  # seconds a getUpdates with nothing to serve is held open


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() when the fake received it


@dataclass(frozen=True)
class Sent:
    """A sendMessage the fake accepted."""

    chat_id: int
    text: str
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    message_id: int
    photo: str | None = None  # sendPhoto: the file id or URL sent; `text` is the caption

    @property
    def buttons(self) -> list[list[tuple[str, str]]]:
        """Inline keyboard rows as (label, callback_data); [] without a keyboard."""
        if not self.reply_markup:
            return []
        return [
            [(b["text"], b.get("callback_data", "")) for b in row]
            for row in self.reply_markup.get("inline_keyboard", [])
        ]


def html_error(text: str) -> str | None:
    """Why the Bot API would refuse `text` in parse_mode HTML, or None if it would accept it."""
    stack: list[str] = []
    for match in _TAG.finditer(text):
        tag = match.group(1)
        if tag not in HTML_TAGS:
            return f'Unsupported start tag "{tag}" at byte offset {match.start()}'
        if match.group(0).startswith("</"):
            if not stack or stack.pop() != tag:
                return f'Unmatched end tag at byte offset {match.start()}, expected "</{tag}>"'
        else:
            stack.append(tag)
    if stack:
        return f'Can\'t find end tag corresponding to start tag "{stack[-1]}"'
    bare = _ENTITY.sub("", _TAG.sub("", text))
    for ch in "<>&":
        if ch in bare:
            return f"Unsupported start tag or unescaped {ch!r}"
    return None


def visible_text(text: str) -> str:
    """What a member sees of an HTML message: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", text))


def _decode(raw: Any) -> Any:
    """PTB form-encodes every parameter, JSON-encoding the non-strings; undo that."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class FakeTelegram:
    """The Bot API as the bot sees it; `await fake.start()` and set TELEGRAM_API_BASE to `url`."""

    def __init__(self, token: str = TOKEN, username: str = BOT_USERNAME) -> None:
        self.token = token
        self.username = username
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.files: dict[str, bytes] = {}  # add_file: what getFile and downloads serve
        self.downloads: list[str] = []
        self.answered: list[dict[str, Any]] = []
        self.edited: list[dict[str, Any]] = []  # editMessageText calls accepted
        self.webhooks: list[dict[str, Any]] = []
        self.commands: dict[str | None, list[dict[str, Any]]] = {}
        self.links: dict[str, dict[str, Any]] = {}  # invite link -> its ChatInviteLink
        self._updates: deque[dict[str, Any]] = deque()
        self._update_ids = itertools.count(900_000_000)
        self._message_ids = itertools.count(1)
        self._failures: dict[str, deque[int]] = defaultdict(deque)
        self._refusals: dict[int, int] = {}
        self._changed = asyncio.Condition()
        self._server: TestServer | None = None

    # -- life cycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake is not started"
        return str(self._server.make_url("")).rstrip("/")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    # -- scripting --------------------------------------------------------------------------

    def fail_next(self, k: int = 1, code: int = TOO_MANY, method: str = "sendMessage") -> None:
        """The next k calls of `method` are refused with `code` (429 carries retry_after 1)."""
        self._failures[method.lower()].extend([code] * k)

    def refuse(self, chat_id: int, code: int = FORBIDDEN) -> None:
        """Every send to `chat_id` is refused with `code` until `allow(chat_id)`."""
        self._refusals[chat_id] = code

    def allow(self, chat_id: int) -> None:
        self._refusals.pop(chat_id, None)

    def queue_update(self, update: dict[str, Any]) -> int:
        """Hand an update to the next getUpdates; an update_id is assigned if missing."""
        if "update_id" not in update:
            update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        self._notify()
        return int(update["update_id"])

    # -- reading ----------------------------------------------------------------------------

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent_to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    async def wait_for(self, method: str, n: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until the fake has seen n calls of `method` (accepted or refused)."""
        await self._wait(lambda: len(self.calls_of(method)) >= n, timeout, f"{n} {method}")
        return self.calls_of(method)

    async def wait_sent(self, n: int, timeout: float = 5.0) -> list[Sent]:
        """Wait until n sendMessage calls have been accepted; returns them all."""
        await self._wait(lambda: len(self.sent) >= n, timeout, f"{n} sendMessage")
        return list(self.sent)

    async def wait_until(
        self, ready: Callable[[], bool], timeout: float = 5.0, what: str = "a condition"
    ) -> None:
        """Wait until `ready()` holds, checked whenever the fake receives a call."""
        await self._wait(ready, timeout, what)

    async def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(ready), timeout)
            except TimeoutError:
                raise AssertionError(
                    f"waited {timeout}s for {what}; the fake saw {self.methods()}"
                ) from None

    def _notify(self) -> None:
        async def wake() -> None:
            async with self._changed:
                self._changed.notify_all()

        asyncio.get_running_loop().create_task(wake())

    # -- the API ----------------------------------------------------------------------------

    def _me(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Memberbot",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            body = await request.json()
            return dict(body) if isinstance(body, dict) else {}
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            return {key: _decode(value) for key, value in form.items()}
        query = dict(request.query)
        return {key: _decode(value) for key, value in query.items()}

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await self._params(request)
        self.calls.append(Call(method, params, time.monotonic()))
        self._notify()
        name = method.lower()
        if self._failures[name]:
            return _error(self._failures[name].popleft())
        handler = getattr(self, f"_api_{name}", None)
        if handler is None:
            return _error(404, "Not Found")
        response: web.Response = await handler(params)
        return response

    async def _api_getme(self, params: dict[str, Any]) -> web.Response:
        return _ok(self._me())

    async def _api_sendmessage(self, params: dict[str, Any]) -> web.Response:
        chat_id = int(params["chat_id"])
        if chat_id in self._refusals:
            return _error(self._refusals[chat_id])
        text = str(params.get("text", ""))
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        parse_mode = params.get("parse_mode")
        if parse_mode == "HTML" and (why := html_error(text)):
            return _error(400, f"Bad Request: can't parse entities: {why}")
        shown = visible_text(text) if parse_mode == "HTML" else text
        if len(shown.encode("utf-16-le")) // 2 > MAX_TEXT:
            return _error(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        for row in (markup or {}).get("inline_keyboard", []):
            for button in row:
                if len(button.get("callback_data", "").encode()) > 64:
                    return _error(400, "Bad Request: BUTTON_DATA_INVALID")
        message_id = next(self._message_ids)
        self.sent.append(Sent(chat_id, text, parse_mode, markup, message_id))
        self._notify()
        chat_type = "private" if chat_id > 0 else "supergroup"
        return _ok(
            {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": chat_type},
                "from": self._me(),
                "text": shown,
                **({"reply_markup": markup} if markup else {}),
            }
        )

    def add_file(self, file_id: str, data: bytes) -> None:
        """A file people sent (a photo), for getFile and the download."""
        self.files[file_id] = data

    async def _api_getfile(self, params: dict[str, Any]) -> web.Response:
        file_id = str(params.get("file_id", ""))
        if file_id not in self.files:
            return _error(400, "Bad Request: invalid file_id")
        size = len(self.files[file_id])
        if size > FILE_LIMIT:  # the Bot API gives no path to files over 20 MB
            return _error(400, "Bad Request: file is too big")
        return _ok(
            {
                "file_id": file_id,
                "file_unique_id": f"u-{file_id}",
                "file_size": size,
                "file_path": f"photos/{file_id}.jpg",
            }
        )

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        file_id = path.removeprefix("photos/").removesuffix(".jpg")
        if file_id not in self.files:
            return web.Response(status=404)
        self.downloads.append(file_id)
        return web.Response(body=self.files[file_id], content_type="image/jpeg")

    async def _api_sendphoto(self, params: dict[str, Any]) -> web.Response:
        chat_id = int(params["chat_id"])
        if chat_id in self._refusals:
            return _error(self._refusals[chat_id])
        caption = str(params.get("caption", ""))
        markup = params.get("reply_markup")
        if isinstance(markup, str):
            markup = json.loads(markup)
        message_id = next(self._message_ids)
        photo = str(params["photo"])
        self.sent.append(
            Sent(chat_id, caption, params.get("parse_mode"), markup, message_id, photo)
        )
        self._notify()
        chat_type = "private" if chat_id > 0 else "supergroup"
        size = {"file_id": photo, "file_unique_id": f"u{message_id}", "width": 90, "height": 90}
        return _ok(
            {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": chat_type},
                "from": self._me(),
                "photo": [size],
                "caption": caption,
                **({"reply_markup": markup} if markup else {}),
            }
        )

    async def _api_editmessagetext(self, params: dict[str, Any]) -> web.Response:
        self.edited.append(params)
        self._notify()
        chat_id = int(params["chat_id"])
        return _ok(
            {
                "message_id": int(params["message_id"]),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
                "from": self._me(),
                "text": str(params.get("text", "")),
            }
        )

    async def _api_answercallbackquery(self, params: dict[str, Any]) -> web.Response:
        self.answered.append(params)
        return _ok(True)

    async def _api_setwebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhooks.append(params)
        return _ok(True)

    async def _api_deletewebhook(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)

    async def _api_setmycommands(self, params: dict[str, Any]) -> web.Response:
        commands = params.get("commands", [])
        if isinstance(commands, str):
            commands = json.loads(commands)
        self.commands[params.get("language_code") or None] = list(commands)
        return _ok(True)

    async def _api_getupdates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        # An offset confirms every update below it: Telegram forgets them.
        while self._updates and offset and int(self._updates[0]["update_id"]) < offset:
            self._updates.popleft()
        if not self._updates:
            wait = min(float(params.get("timeout") or 0), POLL_WAIT_CAP)
            async with self._changed:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait_for(self._has_updates), wait)
        limit = int(params.get("limit") or 100)
        return _ok(list(itertools.islice(self._updates, limit)))

    def _has_updates(self) -> bool:
        return bool(self._updates)

    async def _api_createchatinvitelink(self, params: dict[str, Any]) -> web.Response:
        member_limit = params.get("member_limit")
        if member_limit is not None and not 1 <= int(member_limit) <= 99_999:
            return _error(400, "Bad Request: MEMBER_LIMIT_INVALID")
        if member_limit is not None and params.get("creates_join_request"):
            return _error(
                400,
                "Bad Request: member limit can't be specified for links requiring administrator "
                "approval",
            )
        link: dict[str, Any] = {
            "invite_link": f"https://t.me/+{secrets.token_urlsafe(12)}",
            "creator": self._me(),
            "creates_join_request": bool(params.get("creates_join_request")),
            "is_primary": False,
            "is_revoked": False,
        }
        for name in ("name", "expire_date", "member_limit"):
            if params.get(name) is not None:
                link[name] = params[name]
        self.links[link["invite_link"]] = link
        return _ok(link)

    async def _api_revokechatinvitelink(self, params: dict[str, Any]) -> web.Response:
        link = self.links.get(str(params.get("invite_link")))
        if link is None:
            return _error(400, "Bad Request: INVITE_HASH_EXPIRED")
        link["is_revoked"] = True
        return _ok(link)

    async def _api_approvechatjoinrequest(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)

    async def _api_declinechatjoinrequest(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)

    async def _api_banchatmember(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)

    async def _api_unbanchatmember(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)

    async def _api_close(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)

    async def _api_logout(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(code: int, description: str | None = None) -> web.Response:
    body: dict[str, Any] = {
        "ok": False,
        "error_code": code,
        "description": description or ERRORS.get(code, "Error"),
    }
    if code == TOO_MANY:
        body["parameters"] = {"retry_after": 1}
    return web.json_response(body, status=code)


@asynccontextmanager
async def running_fake(**kwargs: Any) -> AsyncIterator[FakeTelegram]:
    """`async with running_fake() as fake:` a started fake, closed afterwards."""
    fake = FakeTelegram(**kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
