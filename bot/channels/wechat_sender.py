"""Sending on WeChat: customer-service messages, template messages and invite QR codes, as
the core's ports.

All need the AppID and secret; without them a push is not delivered and an invite has no QR
code (the member still gets the code as text).

A push whose kind has a template id in the rules (`[wechat.templates]`) goes out as a template
message, which WeChat does not bind to the follower's 48-hour window; its text fills the
template's fields as `template_data` says. Every other push is a customer-service message.
"""

from __future__ import annotations

import logging

import aiohttp

from bot.channels.wechat_api import QR_MAX_LIFE, WeChatAPI, WeChatAPIError, qrcode_image_url
from bot.core.messages import Reply, numbered_text
from bot.core.options import NumberedOptions
from bot.core.ports import Cache, Delivery, InviteLink, LockTimeout
from bot.settings import Rules

log = logging.getLogger("memberbot.wechat")

CHANNEL = "wechat"
QR_FRESH_FOR = 7 * 86400  # a shown invite QR code has at least this long (or half its life) left
HELD = {"outside-window", "45015", "45047"}  # WeChat lets us write again when they write
FINAL = {"43004"}  # unfollowed
BAD_TEMPLATE = "40037"  # the account has no such template: the rules name a wrong id
INVALID_TEMPLATE = "invalid-template"  # the push fails with this; the follower is not at fault


def template_data(text: str) -> dict[str, str]:
    """A push's text in a template's fields: `first` its first line, `keyword1` the whole
    text (since 2023 WeChat shows only the keyword fields, so nothing is lost there),
    `remark` empty. A template whose keyword1 is a free text ("内容") shows it as it is."""
    first = text.split("\n", 1)[0]
    return {"first": first, "keyword1": text, "remark": ""}


class WeChatSender:
    channel = CHANNEL

    def __init__(self, api: WeChatAPI, cache: Cache) -> None:
        self.api = api
        self.cache = cache
        self.options = NumberedOptions(cache)

    async def start(self) -> None:
        await self.api.start()

    async def close(self) -> None:
        await self.api.close()

    async def send(self, chat_id: str, reply: Reply) -> Delivery:
        """A customer-service message; WeChat allows it only inside the follower's window."""
        if not self.api.enabled:
            return Delivery.cannot("outbound-off")
        result = await self.api.send_text(chat_id, numbered_text(reply))
        if result.sent:
            if reply.buttons:  # (without any, there is nothing to remember)
                await self.options.remember(CHANNEL, chat_id, reply)
            return Delivery.ok()
        log.info("wechat push not delivered reason=%s", result.reason)
        if result.reason in HELD:
            return Delivery(False, result.reason, hold=True)
        return Delivery(False, result.reason, final=result.reason in FINAL)

    async def send_notice(self, chat_id: str, kind: str, reply: Reply, rules: Rules) -> Delivery:
        """A template message when the rules give `kind` a template id, else `send`."""
        template_id = rules.wechat.templates.get(kind)
        if template_id is None:
            return await self.send(chat_id, reply)
        if not self.api.enabled:
            return Delivery.cannot("outbound-off")
        text = numbered_text(reply)
        result = await self.api.send_template(chat_id, template_id, template_data(text))
        if result.sent:
            await self.options.remember(CHANNEL, chat_id, reply)
            return Delivery.ok()
        log.info("wechat notice not delivered kind=%s reason=%s", kind, result.reason)
        if result.reason == BAD_TEMPLATE:
            log.warning("wechat template id for kind=%s is unknown to WeChat (40037)", kind)
            return Delivery.cannot(INVALID_TEMPLATE)
        return Delivery(False, result.reason, final=result.reason in FINAL)

    async def fetch_media(self, media_id: str, limit: int) -> bytes | None:
        """An image the follower sent, fetched at once: WeChat deletes it after 3 days."""
        if not self.api.enabled:
            return None
        try:
            return await self.api.media(media_id, limit)
        except (WeChatAPIError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("wechat media not fetched error=%s", type(exc).__name__)
            return None

    async def invite_link(self, member_id: int, payload: str) -> InviteLink | None:
        """A temporary parametric QR code (scene `payload`), reused while it has life left.

        Two requests at once for a member without a cached code may each create one; both
        codes work, and the later one is kept.
        """
        if not self.api.enabled:
            return None
        key = self.cache.keys.wechat_invite_qr(member_id)
        url = await self.cache.get(key)
        if url is None:
            url = await self._new_invite_qr(member_id, payload, key)
        return InviteLink("qr", url) if url is not None else None

    def share_url(self, url: str, text: str) -> str | None:
        return None  # a QR code is shared by showing it

    async def _new_invite_qr(self, member_id: int, scene: str, key: str) -> str | None:
        try:
            answer = await self.api.create_qrcode(
                scene, permanent=False, expire_seconds=QR_MAX_LIFE
            )
        except WeChatAPIError as exc:
            log.warning("wechat invite qr failed member=%s errcode=%d", member_id, exc.code)
            return None
        except (LockTimeout, aiohttp.ClientError, TimeoutError) as exc:
            # The type only: a network error's text can carry the URL with the access token.
            log.warning("wechat invite qr failed member=%s error=%s", member_id, type(exc).__name__)
            return None
        ticket, life = answer.get("ticket"), answer.get("expire_seconds", QR_MAX_LIFE)
        if not isinstance(ticket, str) or not ticket or not isinstance(life, int):
            log.warning("wechat invite qr failed member=%s error=unexpected-answer", member_id)
            return None
        url = qrcode_image_url(ticket)
        keep = life - min(QR_FRESH_FOR, life // 2)
        if keep > 0:
            await self.cache.set(key, url, keep)
        return url
