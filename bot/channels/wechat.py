"""WeChat in: the Official Account webhook, GET /wechat (URL check) and POST /wechat.

Plain, compatible and safe (AES) mode. The adapter only translates: XML in → `Inbound` (or a
core event: follow, unfollow), `Reply` → passive XML reply; past the 4-second mark the answer
goes out later as a customer-service message, through the core's pushes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element

from aiohttp import web
from wechatpy import parse_message
from wechatpy.replies import TextReply

from bot.channels.wechat_crypto import CryptoError, WeChatCipher, signature, signature_ok
from bot.channels.wechat_sender import WeChatSender
from bot.channels.wechat_xml import (
    MESSAGE_TYPES,
    BadRequest,
    check_message,
    delivery_id,
    parse_xml,
)
from bot.core.deliveries import Deliveries
from bot.core.events import Subscribed, Unsubscribed
from bot.core.messages import Inbound, Reply, clean_text, numbered_text
from bot.core.options import NumberedOptions
from bot.core.pushes import Target
from bot.http.limits import MAX_BODY
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
        if not signature_ok(
            q.get("signature", ""), self.token, q.get("timestamp", ""), q.get("nonce", "")
        ):
            return web.Response(status=403, text="bad signature")
        return web.Response(text=q.get("echostr", ""))

    async def receive(self, request: web.Request) -> web.Response:
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text="body too large")
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not signature_ok(q.get("signature", ""), self.token, timestamp, nonce):
            return web.Response(status=403, text="bad signature")
        if not nonce.isalnum():  # it is echoed into the encrypted reply's XML
            return web.Response(status=400, text="bad nonce")
        body = await request.read()
        encrypted = q.get("encrypt_type", "raw").lower() == "aes"
        try:
            root = parse_xml(body)
            if encrypted:
                if self.cipher is None:
                    log.error("wechat encrypted post refused: WECHAT_AES_KEY is not set")
                    return web.Response(status=403, text="safe mode is not configured")
                sealed = root.findtext("Encrypt") or ""
                if not signature_ok(
                    q.get("msg_signature", ""), self.token, timestamp, nonce, sealed
                ):
                    return web.Response(status=403, text="bad msg_signature")
                plain = self.cipher.decrypt(sealed)
                root = parse_xml(plain.encode())
            else:
                plain = body.decode()
            check_message(root)
            message = parse_message(plain)
        except (BadRequest, CryptoError, UnicodeDecodeError, KeyError) as exc:
            log.info("wechat post rejected: %s", exc)
            return web.Response(status=400, text="bad request")
        answer = await self._answer_once(root, message)
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

    async def _answer_once(self, root: Element, message: Any) -> str:
        """Handle a delivery once; WeChat's retries of it get the same answer."""
        did = delivery_id(root)
        if not await self.deliveries.claim(did):
            stored = await self.deliveries.answer(did, self.deadline)
            return stored if stored is not None else SUCCESS
        work = asyncio.create_task(self._handle(message))
        try:
            reply = await asyncio.wait_for(asyncio.shield(work), self.deadline)
        except TimeoutError:
            await self.deliveries.store(did, SUCCESS)
            late = asyncio.create_task(self._deliver_late(work, str(message.source), did))
            self._late.add(late)
            late.add_done_callback(self._late.discard)
            return SUCCESS
        except Exception:
            await self.deliveries.release(did)  # nothing answered: WeChat's retry may try again
            raise
        answer = _render(reply, message) if reply is not None else SUCCESS
        await self.deliveries.store(did, answer)
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

    async def _handle(self, message: Any) -> Reply | None:
        inbound = await self._translate(message)
        if inbound is None:
            return None
        # WeChat has no buttons: options are shown as "[1] ...", and a number picks one.
        inbound = await self.options.pick(inbound)
        reply = await self.core.dispatcher.handle(inbound)
        if reply is not None:
            await self.options.remember(CHANNEL, inbound.external_id, reply)
        return reply

    async def _translate(self, message: Any) -> Inbound | None:
        """WeChat message or event → Inbound; None for what needs no answer."""
        openid = str(message.source)
        kind = message.type
        base: dict[str, Any] = {
            "channel": CHANNEL,
            "external_id": openid,
            "chat_id": openid,
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
        event = str(getattr(message, "event", "")).lower()
        if event == "unsubscribe":
            return Inbound(**base, event=Unsubscribed())
        if event not in TALKING_EVENTS:
            return None  # menu links, location reports, template receipts...: nothing to say
        if self.api.enabled:
            await self.api.open_window(openid, message=False)
        if event == "click":
            return Inbound(**base, menu_key=str(message.key or "HELP"))
        scene = str(message.scene_id) if event in ("subscribe_scan", "scan") else None
        return Inbound(**base, event=Subscribed(), menu_key="HELP", referral=scene or None)


def _render(reply: Reply, message: Any) -> str:
    # wechatpy wraps the content in CDATA without escaping; a "]]>" in it must be split.
    content = numbered_text(reply).replace("]]>", "]]]]><![CDATA[>")
    return str(TextReply(message=message, content=content).render())
