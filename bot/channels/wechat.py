"""WeChat in: the Official Account webhook, GET /wechat (URL check) and POST /wechat.

Plain, compatible and safe (AES) mode. The adapter only translates: XML in → `Inbound` (or a
core event: follow, unfollow), `Reply` → passive XML reply; past the 4-second mark the answer
goes out later as a customer-service message, through the core's pushes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element

from aiohttp import web
from wechatpy.replies import TextReply

from bot.channels.wechat_crypto import CryptoError, WeChatCipher, signature, signature_ok
from bot.channels.wechat_sender import WeChatSender
from bot.channels.wechat_xml import (
    MESSAGE_TYPES,
    BadRequest,
    WeChatMessage,
    delivery_id,
    parse_xml,
    read_message,
)
from bot.core.deliveries import Deliveries, Guard, Held
from bot.core.events import Subscribed, Unsubscribed
from bot.core.messages import Inbound, Reply, clean_text, numbered_text
from bot.core.options import NumberedOptions
from bot.core.pushes import Target
from bot.http.limits import MAX_BODY, read_body
from bot.settings import ConfigError

if TYPE_CHECKING:
    from bot.app import Core

log = logging.getLogger("memberbot.wechat")

CHANNEL = "wechat"
REPLY_DEADLINE = 4.0  # WeChat gives up at 5 s and retries; answer "success" before that
SUCCESS = "success"
TALKING_EVENTS = ("subscribe", "subscribe_scan", "scan", "click")


class WeChatChannel:
    name = CHANNEL

    def __init__(
        self, core: Core, sender: WeChatSender, *, deadline: float = REPLY_DEADLINE
    ) -> None:
        settings = core.services.settings
        if not settings.wechat_token:
            raise ValueError("WECHAT_TOKEN is not set")
        self.core = core
        self.sender = sender
        self.api = sender.api
        self.token = settings.wechat_token
        if settings.wechat_aes_key and not settings.wechat_appid:
            # Every encrypted message ends with the AppID; without it none could be checked.
            raise ConfigError("setting MEMBERBOT_WECHAT_APPID is required with WECHAT_AES_KEY")
        self.cipher = (
            WeChatCipher(settings.wechat_aes_key, settings.wechat_appid or "")
            if settings.wechat_aes_key
            else None
        )
        self.mode = settings.wechat_mode_in_use
        if self.mode != "plain" and self.cipher is None:
            raise ConfigError(f"setting MEMBERBOT_WECHAT_MODE={self.mode} needs WECHAT_AES_KEY")
        self.now: Callable[[], float] = time.time  # WeChat signs with its wall clock
        self.deadline = deadline
        self.deliveries = Deliveries(core.services.cache, CHANNEL)
        self.options = NumberedOptions(core.services.cache)
        self._late: set[asyncio.Task[None]] = set()

    def mount(self, app: web.Application) -> None:
        app.router.add_get("/wechat", self.verify)
        app.router.add_post("/wechat", self.receive)
        app.on_cleanup.append(self._stop)
        if not self.api.enabled:
            log.warning(
                "wechat outbound off: WECHAT_APPID/WECHAT_SECRET not set; "
                "replies slower than %.0fs cannot be delivered",
                self.deadline,
            )

    async def _stop(self, _app: web.Application) -> None:
        if self._late:
            await asyncio.wait(self._late, timeout=10)

    async def verify(self, request: web.Request) -> web.Response:
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not signature_ok(q.get("signature", ""), self.token, timestamp, nonce):
            return web.Response(status=403, text="bad signature")
        if not self._fresh(timestamp):
            return web.Response(status=403, text="stale signature")
        return web.Response(text=q.get("echostr", ""))

    def _fresh(self, timestamp: str) -> bool:
        """The signature's timestamp within the rules' window of now (either way)."""
        window = self.core.services.rules.wechat.signature_window_seconds
        if not (timestamp.isascii() and timestamp.isdecimal() and len(timestamp) <= 12):
            return False
        return abs(self.now() - int(timestamp)) <= window

    def _seal(self, timestamp: str, nonce: str, body: bytes) -> Guard:
        """A signature (timestamp + nonce) serves one body: WeChat's retry of it, no other.
        The first body to arrive with it is remembered for twice the window (and a minute)."""
        cache = self.core.services.cache
        window = self.core.services.rules.wechat.signature_window_seconds
        key = cache.keys.wechat_nonce(timestamp, nonce)
        return Guard(key, hashlib.sha256(body).hexdigest(), 2 * window + 60)

    async def _first_use(self, seal: Guard) -> bool:
        """The seal on its own (a post refused before its delivery's lease is looked at)."""
        cache = self.core.services.cache
        if await cache.set_if_absent(seal.key, seal.value, seal.ttl):
            return True
        return await cache.get(seal.key) == seal.value

    async def receive(self, request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text="body too large")
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not signature_ok(q.get("signature", ""), self.token, timestamp, nonce):
            return web.Response(status=403, text="bad signature")
        if not self._fresh(timestamp):
            return web.Response(status=403, text="stale signature")
        if not (nonce.isascii() and nonce.isalnum() and len(nonce) <= 64):
            return web.Response(status=400, text="bad nonce")  # echoed into encrypted replies
        encrypted = q.get("encrypt_type", "raw").lower() == "aes"
        if encrypted and self.cipher is None:
            log.error("wechat encrypted post refused: WECHAT_AES_KEY is not set")
            return web.Response(status=403, text="safe mode is not configured")
        if encrypted and self.mode == "plain":
            return web.Response(status=403, text="plain mode: encrypted posts are refused")
        if not encrypted and self.mode == "safe":
            return web.Response(status=403, text="safe mode: plain posts are refused")
        body = await read_body(request)
        # The signature is bound to the first body it came with, also when that body is
        # refused: checked here for a refused one, with the delivery's lease for the others.
        seal = self._seal(timestamp, nonce, body)
        try:
            root = parse_xml(body)
            if encrypted:
                assert self.cipher is not None
                sealed = root.findtext("Encrypt") or ""
                if not signature_ok(
                    q.get("msg_signature", ""), self.token, timestamp, nonce, sealed
                ):
                    if not await self._first_use(seal):
                        return _reused()
                    return web.Response(status=403, text="bad msg_signature")
                root = parse_xml(self.cipher.decrypt(sealed).encode())
            message = read_message(root)
        except (BadRequest, CryptoError) as exc:
            if not await self._first_use(seal):
                return _reused()
            log.info("wechat post rejected: %s", exc)
            return web.Response(status=400, text="bad request")
        answer = await self._answer_once(root, message, seal)
        if answer is None:
            return _reused()
        return self._respond(answer, encrypted, nonce)

    def _respond(self, answer: str, encrypted: bool, nonce: str) -> web.Response:
        if answer == SUCCESS or not encrypted or self.cipher is None:
            return web.Response(
                text=answer, content_type="application/xml" if answer != SUCCESS else "text/plain"
            )
        timestamp = str(int(time.time()))
        sealed = self.cipher.encrypt(answer)
        sig = signature(self.token, timestamp, nonce, sealed)
        xml = (
            f"<xml><Encrypt><![CDATA[{sealed}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )
        return web.Response(text=xml, content_type="application/xml")

    async def _answer_once(self, root: Element, message: WeChatMessage, seal: Guard) -> str | None:
        """Handle a delivery once; WeChat's retries of it get the same answer. None: the
        signature came with another body before (nothing done).

        A retry that finds the first delivery still leased waits for its answer. The living
        owner stores one by the deadline (at worst "success", replying later), so a wait past
        it means the owner died: its lease lapses within seconds and the retry does the work.
        """
        did = delivery_id(root)
        while True:
            async with self.deliveries.lease_on(did, seal) as held:
                if held.refused:
                    return None
                if held.answer is not None:
                    return held.answer
                if held.taken:
                    return await self._work(held, message)
            waited = await self.deliveries.wait(did, self.deadline + self.deliveries.lease)
            if waited.answer is not None:
                return waited.answer
            if not waited.free:
                return SUCCESS  # an owner alive but stalled past its lease: it replies late

    async def _work(self, held: Held, message: WeChatMessage) -> str:
        did = held.delivery_id
        work = asyncio.create_task(self._handle(message, did))
        # The work goes on past the deadline (asyncio.wait never cancels it), answered later.
        finished, _ = await asyncio.wait((work,), timeout=self.deadline)
        if not finished:
            await held.done(SUCCESS)
            late = asyncio.create_task(self._deliver_late(work, message.source, did))
            self._late.add(late)
            late.add_done_callback(self._late.discard)
            return SUCCESS
        # An exception leaves no answer: the lease is given back and a retry tries again.
        reply = work.result()
        answer = _render(reply, message) if reply is not None else SUCCESS
        await held.done(answer)
        return answer

    async def _deliver_late(
        self, work: asyncio.Task[Reply | None], openid: str, delivery_id: str
    ) -> None:
        """The 5-second rule: a slow answer goes out as a customer-service message, through
        the outbox (WeChat's window and quota apply; a crash after this does not lose it)."""
        try:
            reply = await work
            if reply is None:
                return
            if not self.api.enabled:
                log.warning("wechat late reply dropped: outbound is off")
                return
            target = Target(CHANNEL, openid)
            await self.core.services.pushes.now(target, "late-answer", f"late:{delivery_id}", reply)
        except Exception:  # a background task: nobody else would see the failure
            log.exception("wechat late reply failed")

    async def _handle(self, message: WeChatMessage, delivery: str) -> Reply | None:
        inbound = await self._translate(message, delivery)
        if inbound is None:
            return None
        # WeChat has no buttons: options are shown as "[1] ...", and a number picks one.
        inbound = await self.options.pick(inbound)
        reply = await self.core.dispatcher.handle(inbound)
        if reply is not None:
            await self.options.remember(CHANNEL, inbound.external_id, reply)
        return reply

    async def _translate(self, message: WeChatMessage, delivery: str) -> Inbound | None:
        """WeChat message or event → Inbound; None for what needs no answer. `delivery` (the
        MsgId, or an event's identity) names it across WeChat's retries."""
        openid = message.source
        kind = message.type
        base: dict[str, Any] = {
            "channel": CHANNEL,
            "external_id": openid,
            "chat_id": openid,
            "message_id": delivery,
        }
        if kind in MESSAGE_TYPES:
            if self.api.enabled:
                await self.api.open_window(openid, message=True)
            if kind == "text":
                limit = self.core.services.rules.limits.text_length
                return Inbound(**base, text=clean_text(message.content or "", limit))
            if kind in ("image", "voice"):
                return Inbound(**base, media_id=str(message.media_id))
            return Inbound(**base)
        event = message.event
        if event == "unsubscribe":
            return Inbound(**base, event=Unsubscribed())
        if event not in TALKING_EVENTS:
            return None  # menu links, location reports, template receipts...: nothing to say
        if self.api.enabled:
            await self.api.open_window(openid, message=False)
        if event == "click":
            return Inbound(**base, menu_key=message.key or "HELP")
        referral = message.scene_id or None
        return Inbound(**base, event=Subscribed(), menu_key="HELP", referral=referral)


def _reused() -> web.Response:
    log.warning("wechat post refused: a signature reused for another body")
    return web.Response(status=403, text="signature already used")


def _render(reply: Reply, message: WeChatMessage) -> str:
    reply_xml = TextReply(
        source=_cdata(message.target),
        target=_cdata(message.source),
        content=_cdata(numbered_text(reply)),
    )
    return str(reply_xml.render())


def _cdata(text: str) -> str:
    # wechatpy wraps fields in CDATA without escaping; a "]]>" in one must be split.
    return text.replace("]]>", "]]]]><![CDATA[>")
