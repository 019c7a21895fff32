"""Sending on Telegram: one PTB `ExtBot` under the shared rate limiter, built from settings.

The server's webhook/polling Application, a `memberbot worker` and the CLI all send through
this object, so they share one bot, one connection pool and (with Redis) one budget. It
implements the core's ports (bot/core/ports.py) for Telegram: pushes, posts and edits in
groups, invite deep links, one-person group links, join requests and removals.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import ExtBot

from bot.channels.telegram_flow import SharedRateLimiter, chat_number, retry_seconds
from bot.core.clock import Clock
from bot.core.messages import Reply
from bot.core.ports import Cache, Delivery, InviteLink

log = logging.getLogger("memberbot.telegram")

CHANNEL = "telegram"
MAX_TEXT = 4096
# Telegram takes two-letter language codes only, so zh_TW cannot be told apart here.
COMMAND_LANGUAGES: dict[str | None, str] = {None: "en", "zh": "zh_CN"}


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """Buttons two to a row; callback_data is the short action code (at most 64 bytes)."""
    if not reply.buttons:
        return None
    buttons = [
        InlineKeyboardButton(b.label, url=b.url)
        if b.url
        else InlineKeyboardButton(
            b.label, callback_data=b.action.encode()[:64].decode(errors="ignore")
        )
        for b in reply.buttons
    ]
    return InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])


def as_html(text: str) -> str:
    """Every reply is plain text from the core: escape all of it (member strings included).

    Cut before escaping: Telegram's limit counts the text after entity parsing, and a cut
    after escaping could split an entity ("&am") and get the whole message refused."""
    return html.escape(text[:MAX_TEXT], quote=False)


def refusal(exc: TelegramError) -> Delivery:
    """What a failed call means for the outbox: blocked is final, a flood wait says how long."""
    if isinstance(exc, Forbidden):
        return Delivery(False, "forbidden", final=True)
    if isinstance(exc, RetryAfter):
        return Delivery(False, "rate-limited", retry_after=retry_seconds(exc))
    if isinstance(exc, BadRequest):
        # "chat not found", "message to edit not found": the same call would fail again.
        return Delivery(False, "bad-request", final=True)
    return Delivery(False, "error")


class TelegramSender:
    """The Bot API client of one bot token; implements every port Telegram has."""

    channel = CHANNEL

    def __init__(self, token: str, api_base: str, cache: Cache, clock: Clock) -> None:
        base = api_base.rstrip("/")
        self.bot: ExtBot[Any] = ExtBot(
            token,
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            rate_limiter=SharedRateLimiter(cache),
        )
        self.clock = clock

    async def start(self) -> None:
        """Fetch the bot's own name (getMe); idempotent."""
        await self.bot.initialize()

    async def close(self) -> None:
        await self.bot.shutdown()

    async def send(self, chat_id: str, reply: Reply) -> Delivery:
        """To a person's private chat (its id is their user id) or any other chat."""
        return await self.post(chat_id, reply)

    async def post(self, chat_id: str, reply: Reply) -> Delivery:
        number = chat_number(chat_id)
        if number is None:
            return Delivery.cannot("bad-chat-id")
        try:
            await self.start()
            sent = await self._deliver(number, reply)
        except TelegramError as exc:
            log.warning("telegram send failed error=%s", type(exc).__name__)
            return refusal(exc)
        return Delivery.ok(str(sent.message_id))

    async def _deliver(self, chat_id: int, reply: Reply) -> Message:
        markup = keyboard(reply)
        if reply.photo:
            return await self.bot.send_photo(
                chat_id,
                reply.photo,
                caption=as_html(reply.text[:1024]),
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
            )
        return await self.bot.send_message(
            chat_id, as_html(reply.text), parse_mode=ParseMode.HTML, reply_markup=markup
        )

    async def fetch_media(self, media_id: str, limit: int) -> bytes | None:
        """A file a person sent (a photo's largest size): getFile, then its download. The Bot
        API serves files up to 20 MB."""
        try:
            await self.start()
            found = await self.bot.get_file(media_id)
            if found.file_size is not None and found.file_size > limit:
                return None
            data = bytes(await found.download_as_bytearray())
        except TelegramError as exc:
            log.info("telegram file not fetched error=%s", type(exc).__name__)
            return None
        return data if len(data) <= limit else None

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> Delivery:
        """Replace the text (and buttons) of a message the bot sent earlier."""
        number = chat_number(chat_id)
        if number is None or not message_id.isdigit():
            return Delivery.cannot("bad-chat-id")
        try:
            await self.start()
            await self.bot.edit_message_text(
                as_html(reply.text),
                chat_id=number,
                message_id=int(message_id),
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(reply),
            )
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return Delivery.ok(message_id)  # the same text again: nothing to change
            return refusal(exc)
        except TelegramError as exc:
            return refusal(exc)
        return Delivery.ok(message_id)

    async def invite_link(self, member_id: int, payload: str) -> InviteLink | None:
        """The deep link `t.me/<bot>?start=<payload>` that attributes whoever opens it."""
        try:
            await self.start()
        except TelegramError as exc:
            log.warning("telegram getMe failed error=%s", type(exc).__name__)
            return None
        return InviteLink("link", f"https://t.me/{self.bot.username}?start={payload}")

    def share_url(self, url: str, text: str) -> str | None:
        """Telegram's share dialog for a link, with a line of text to go with it."""
        return f"https://t.me/share/url?url={quote(url, safe='')}&text={quote(text, safe='')}"

    async def personal_link(self, chat_id: str, name: str, hours: int) -> str | None:
        """A group invite link that lets one person in and expires after `hours`."""
        number = chat_number(chat_id)
        if number is None:
            return None
        expires = self.clock.now() + timedelta(hours=hours)
        try:
            made = await self.bot.create_chat_invite_link(
                number, expire_date=expires, member_limit=1, name=name[:32]
            )
        except TelegramError as exc:
            # Usually the bot is not an admin of the group (or lacks "invite users"): Telegram's
            # own description says which. Network errors are named only (their text may hold
            # the request URL, and so the token).
            said = exc.message if isinstance(exc, BadRequest | Forbidden) else ""
            log.warning(
                "telegram group link refused chat=%s error=%s %s", number, type(exc).__name__, said
            )
            return None
        return made.invite_link

    async def revoke_link(self, chat_id: str, link: str) -> None:
        number = chat_number(chat_id)
        if number is None:
            return
        try:
            await self.bot.revoke_chat_invite_link(number, link)
        except TelegramError as exc:
            log.warning("telegram link revoke failed chat=%s error=%s", number, type(exc).__name__)

    async def answer_join_request(self, chat_id: str, user_id: str, approve: bool) -> bool:
        """Approve or decline; False when Telegram refused (e.g. an admin answered first)."""
        number, user = chat_number(chat_id), chat_number(user_id)
        if number is None or user is None:
            return False
        try:
            if approve:
                await self.bot.approve_chat_join_request(number, user)
            else:
                await self.bot.decline_chat_join_request(number, user)
        except TelegramError as exc:
            log.warning(
                "telegram join request answer failed chat=%s approve=%s error=%s",
                number,
                approve,
                type(exc).__name__,
            )
            return False
        return True

    async def remove(self, chat_id: str, user_id: str) -> None:
        """Ban and at once unban: out of the group, free to come back. Never raises."""
        number, user = chat_number(chat_id), chat_number(user_id)
        if number is None or user is None:
            return
        try:
            await self.bot.ban_chat_member(number, user)
        except TelegramError as exc:
            log.warning("telegram remove failed chat=%s error=%s", number, type(exc).__name__)
            return
        try:
            await self.bot.unban_chat_member(number, user, only_if_banned=True)
        except TelegramError as exc:
            log.error(
                "telegram unban failed, someone stays banned chat=%s error=%s",
                number,
                type(exc).__name__,
            )

    async def publish_commands(self, commands: Iterable[tuple[str, str, str]]) -> None:
        """Telegram's command menu: (language code or "", command, description) triples."""
        by_language: dict[str | None, list[BotCommand]] = {}
        for language, name, description in commands:
            by_language.setdefault(language or None, []).append(BotCommand(name, description))
        for code, listed in by_language.items():
            await self.bot.set_my_commands(listed, language_code=code)
