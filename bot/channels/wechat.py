"""WeChat Official Account webhook: GET /wechat (URL check) and POST /wechat (messages).

Plain, compatible and safe (AES) mode. The adapter only translates: XML in → `Inbound`,
`Reply` → passive XML reply (or, past the 4-second mark, a customer-service message).
Its `WeChatPort` lets the core push customer-service messages and show invite QR codes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import aiohttp
import defusedxml.ElementTree as SafeET
from aiohttp import web
from defusedxml import DefusedXmlException
from wechatpy import parse_message
from wechatpy.replies import TextReply

from bot.app_core import Core
from bot.channels.wechat_api import QR_MAX_LIFE, WeChatAPI, WeChatAPIError, qrcode_image_url
from bot.channels.wechat_crypto import CryptoError, WeChatCipher, signature, signature_ok
from bot.core.deliveries import Deliveries
from bot.core.messages import Inbound, Reply, clean_text, numbered_text, options
from bot.core.outreach import InviteLink, Port
from bot.settings import ConfigError
from handlers.invites import REFERRAL_PREFIX
from storage import identities
from storage.cache import Cache, LockTimeout
from storage.models import Member

log = logging.getLogger("memberbot.wechat")

CHANNEL = "wechat"
MAX_BODY = 64 * 1024
REPLY_DEADLINE = 4.0  # WeChat gives up at 5 s and retries; answer "success" before that
SUCCESS = "success"
OPTIONS_TTL = 600  # seconds a typed number still picks from the last numbered options
QR_FRESH_FOR = 7 * 86400  # a shown invite QR code has at least this long (or half its life) left
MESSAGE_TYPES = {"text", "image", "voice", "video", "shortvideo", "location", "link"}
# Fields read from a message; each must be one element holding text.
TEXT_FIELDS = (
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "MsgId",
    "Event",
    "EventKey",
    "Content",
    "MediaId",
)


class BadRequest(Exception):
    pass


def parse_xml(body: bytes) -> Element:
    """Parse untrusted XML: DTDs, entities and external references are refused outright."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise BadRequest(f"unusable XML: {type(exc).__name__}") from exc
    if root.tag != "xml":
        raise BadRequest("root element is not <xml>")
    return root


def check_message(root: Element) -> None:
    """A sender and a type, and the fields the adapter reads as single text elements.

    wechatpy (xmltodict) turns a repeated or nested element into a list or dict and then
    fails on `.lower()`; an absent sender would become the openid "None".
    """
    for tag in TEXT_FIELDS:
        found = root.findall(tag)
        if len(found) > 1 or any(len(element) for element in found):
            raise BadRequest(f"{tag} is not a single text element")
    for tag in ("FromUserName", "MsgType"):
        if not (root.findtext(tag) or "").strip():
            raise BadRequest(f"no {tag}")


def delivery_id(root: Element) -> str:
    """MsgId for messages; FromUserName + CreateTime + Event for events (they have no MsgId)."""
    msg_id = root.findtext("MsgId")
    if msg_id:
        return f"msg:{msg_id}"
    parts = (root.findtext(tag) or "" for tag in ("FromUserName", "CreateTime", "Event"))
    return "event:" + ":".join(parts)


class WeChatChannel:
    name = CHANNEL

    def __init__(self, core: Core, api: WeChatAPI, *, deadline: float = REPLY_DEADLINE) -> None:
        settings = core.services.settings
        if not settings.wechat_token:
            raise ValueError("WECHAT_TOKEN is not set")
        self.core = core
        self.api = api
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
        self._late: set[asyncio.Task[None]] = set()

    def mount(self, app: web.Application) -> None:
        app.router.add_get("/wechat", self.verify)
        app.router.add_post("/wechat", self.receive)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        if not self.api.enabled:
            log.warning(
                "wechat outbound off: WECHAT_APPID/WECHAT_SECRET not set; "
                "replies slower than %.0fs cannot be delivered",
                self.deadline,
            )

    async def _start(self, _app: web.Application) -> None:
        await self.api.start()

    async def _stop(self, _app: web.Application) -> None:
        if self._late:
            await asyncio.wait(self._late, timeout=10)
        await self.api.close()

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
            late = asyncio.create_task(self._deliver_late(work, message.source))
            self._late.add(late)
            late.add_done_callback(self._late.discard)
            return SUCCESS
        except Exception:
            await self.deliveries.release(did)  # nothing answered: WeChat's retry may try again
            raise
        answer = self._render(reply, message) if reply is not None else SUCCESS
        await self.deliveries.store(did, answer)
        return answer

    def _render(self, reply: Reply, message: Any) -> str:
        # wechatpy wraps the content in CDATA without escaping; a "]]>" in it must be split.
        content = numbered_text(reply).replace("]]>", "]]]]><![CDATA[>")
        return str(TextReply(message=message, content=content).render())

    async def _deliver_late(self, work: asyncio.Task[Reply | None], openid: str) -> None:
        """The 5-second rule: a slow answer goes out as a customer-service message."""
        try:
            reply = await work
            if reply is None:
                return
            if not self.api.enabled:
                log.warning("wechat late reply dropped: outbound is off")
                return
            result = await self.api.send_text(openid, numbered_text(reply))
        except Exception:  # a background task: nobody else would see the failure
            log.exception("wechat late reply failed")
            return
        if not result.sent:
            log.warning("wechat late reply not delivered reason=%s", result.reason)

    async def _handle(self, message: Any) -> Reply | None:
        inbound = await self._translate(message)
        if inbound is None:
            return None
        reply = await self.core.dispatcher.handle(inbound)
        if reply is not None:
            await remember_options(self.core.services.cache, inbound.external_id, reply)
        return reply

    async def _translate(self, message: Any) -> Inbound | None:
        """WeChat message or event → Inbound; None for what needs no answer."""
        services = self.core.services
        openid = str(message.source)
        kind = message.type
        base: dict[str, Any] = {"channel": CHANNEL, "external_id": openid, "chat_id": openid}
        if kind in MESSAGE_TYPES:
            if self.api.enabled:
                await self.api.open_window(openid, message=True)
            if kind == "text":
                text = clean_text(message.content or "", services.rules.limits.text_length)
                return Inbound(**base, text=text, menu_key=await self._option(openid, text))
            if kind in ("image", "voice"):
                return Inbound(**base, media_id=str(message.media_id))
            return Inbound(**base)
        event = str(getattr(message, "event", "")).lower()
        if event == "unsubscribe":
            async with services.db.transaction() as session:
                await identities.mark_unreachable(
                    session,
                    CHANNEL,
                    openid,
                    services.clock.now(),
                    "wechat:unsubscribed",
                    erase_personal=True,
                )
            return None
        if event not in ("subscribe", "subscribe_scan", "scan", "click"):
            return None  # menu links, location reports, template receipts...: nothing to say
        if self.api.enabled:
            await self.api.open_window(openid, message=False)
        if event == "click":
            return Inbound(**base, menu_key=str(message.key or "HELP"))
        async with services.db.transaction() as session:
            await identities.mark_reachable(session, CHANNEL, openid)
        scene = str(message.scene_id) if event in ("subscribe_scan", "scan") else None
        return Inbound(**base, menu_key="HELP", referral=scene or None)

    async def _option(self, openid: str, text: str) -> str | None:
        """A bare number answers the numbered options of the last reply."""
        # ASCII only: "²" passes str.isdigit() but not int(); "١" would pick an option unasked.
        if not (text.isascii() and text.isdigit()) or len(text) > 2:
            return None
        stored = await self.core.services.cache.get(
            self.core.services.cache.keys.options(CHANNEL, openid)
        )
        actions = json.loads(stored) if stored else []
        index = int(text) - 1
        return actions[index] if 0 <= index < len(actions) else None


async def remember_options(cache: Cache, openid: str, reply: Reply) -> None:
    """Keep what the numbers of a reply's numbered options stand for, for a typed answer."""
    if choices := options(reply):
        key = cache.keys.options(CHANNEL, openid)
        await cache.set(key, json.dumps([b.action for b in choices]), OPTIONS_TTL)


class WeChatPort(Port):
    """What the core may ask of WeChat: customer-service pushes and invite QR codes.

    Both need the AppID and secret; without them a push is not delivered and an invite has
    no QR code (the member still gets the code as text).
    """

    channel = CHANNEL

    def __init__(self, api: WeChatAPI, cache: Cache) -> None:
        self.api = api
        self.cache = cache

    async def push(self, external_id: str, reply: Reply) -> bool:
        """A customer-service message; WeChat allows it only inside the follower's window."""
        if not self.api.enabled:
            return False
        result = await self.api.send_text(external_id, numbered_text(reply))
        if result.sent:
            await remember_options(self.cache, external_id, reply)
        else:
            log.info("wechat push not delivered reason=%s", result.reason)
        return result.sent

    async def invite_link(self, member: Member) -> InviteLink | None:
        """A temporary parametric QR code (scene `ref_<code>`), reused while it has life left.

        Two requests at once for a member without a cached code may each create one; both
        codes work, and the later one is kept.
        """
        if not self.api.enabled:
            return None
        key = self.cache.keys.wechat_invite_qr(member.id)
        url = await self.cache.get(key)
        if url is None:
            url = await self._new_invite_qr(member, key)
        return InviteLink("qr", url) if url is not None else None

    async def _new_invite_qr(self, member: Member, key: str) -> str | None:
        scene = f"{REFERRAL_PREFIX}{member.invite_code}"
        try:
            answer = await self.api.create_qrcode(
                scene, permanent=False, expire_seconds=QR_MAX_LIFE
            )
        except WeChatAPIError as exc:
            log.warning("wechat invite qr failed member=%s errcode=%d", member.id, exc.code)
            return None
        except (LockTimeout, aiohttp.ClientError, TimeoutError) as exc:
            # The type only: a network error's text can carry the URL with the access token.
            log.warning("wechat invite qr failed member=%s error=%s", member.id, type(exc).__name__)
            return None
        ticket, life = answer.get("ticket"), answer.get("expire_seconds", QR_MAX_LIFE)
        if not isinstance(ticket, str) or not ticket or not isinstance(life, int):
            log.warning("wechat invite qr failed member=%s error=unexpected-answer", member.id)
            return None
        url = qrcode_image_url(ticket)
        keep = life - min(QR_FRESH_FOR, life // 2)
        if keep > 0:
            await self.cache.set(key, url, keep)
        return url


def wechat_api_for(core: Core) -> WeChatAPI:
    services = core.services
    settings = services.settings
    return WeChatAPI(
        settings.wechat_api_base,
        settings.wechat_appid,
        settings.wechat_secret,
        services.cache,
        services.db,
        services.clock,
    )


def build(core: Core) -> WeChatChannel:
    """The channel, with its port registered on the core (pushes and invite QR codes)."""
    api = wechat_api_for(core)
    channel = WeChatChannel(core, api)
    core.services.outreach.register(WeChatPort(api, core.services.cache))
    return channel
