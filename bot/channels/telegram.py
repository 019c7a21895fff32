"""Telegram channel: a python-telegram-bot Application in webhook or polling mode.

Webhook mode (TELEGRAM_WEBHOOK_URL set) feeds POST /telegram into PTB's update queue;
otherwise PTB polls getUpdates. Either way every update becomes an `Inbound` for the core
and every `Reply` an HTML message with an inline keyboard. Changes in a community's group
(joins, leaves, join requests) go to the core's decisions in handlers/communities.py, and the
`TelegramPort` carries out what the core asks of Telegram (pushes, deep links, group links).
"""

from __future__ import annotations

import hmac
import html
import json
import logging
import re
from datetime import timedelta
from typing import Any

from aiohttp import web
from telegram import (
    BotCommand,
    CallbackQuery,
    ChatJoinRequest,
    ChatMember,
    ChatMemberRestricted,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.app_core import Core
from bot.channels.telegram_flow import PerMemberProcessor, SharedRateLimiter
from bot.core.deliveries import Deliveries
from bot.core.errors import DomainError
from bot.core.i18n import N_, Translator, normalise_hint, pick_locale
from bot.core.messages import Inbound, Reply, clean_text
from bot.core.outreach import GroupInvite, InviteLink, Port
from handlers.communities import GroupJoin, group_member_joined, group_member_left, join_request
from handlers.invites import REFERRAL_PREFIX, share_url
from storage import communities, identities
from storage.models import Community, Member

log = logging.getLogger("memberbot.telegram")

CHANNEL = "telegram"
MAX_BODY = 64 * 1024
MAX_TEXT = 4096
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = [
    "message",
    "callback_query",
    "chat_member",
    "my_chat_member",
    "chat_join_request",
]
REFERRAL = re.compile(r"^ref_[A-Za-z0-9_-]{1,60}$")
GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)
IN_CHAT = (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.MEMBER)
GROUP_LINK_HOURS = 24

COMMANDS = (
    ("checkin", N_("Check in for today's points")),
    ("points", N_("Your points and recent history")),
    ("tier", N_("Your tier, benefits and progress")),
    ("invite", N_("Your invite link: friends and you get points")),
    ("communities", N_("Interest communities to join")),
    ("link", N_("Link your WeChat and Telegram accounts")),
    ("lang", N_("Choose your language")),
    ("birthday", N_("Set your birthday for double points")),
    ("help", N_("What I can do")),
)
# Telegram takes two-letter language codes only, so zh_TW cannot be told apart here.
COMMAND_LANGUAGES = {None: "en", "zh": "zh_CN"}


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


class TelegramChannel:
    name = CHANNEL

    def __init__(self, core: Core, *, max_connections: int = 40) -> None:
        settings = core.services.settings
        if not settings.telegram_token:
            raise ValueError("TELEGRAM_TOKEN is not set")
        self.core = core
        self.webhook_url = settings.telegram_webhook_url
        self.secret = settings.telegram_webhook_secret or ""
        if self.webhook_url and not self.secret:
            raise ValueError("TELEGRAM_WEBHOOK_SECRET must be set with TELEGRAM_WEBHOOK_URL")
        self.max_connections = max_connections
        self.deliveries = Deliveries(core.services.cache, CHANNEL)
        base = settings.telegram_api_base.rstrip("/")
        builder = (
            Application.builder()
            .token(settings.telegram_token)
            .base_url(f"{base}/bot")
            .base_file_url(f"{base}/file/bot")
            .concurrent_updates(PerMemberProcessor())
            .rate_limiter(SharedRateLimiter(core.services.cache))
        )
        if self.webhook_url:
            builder = builder.updater(None)
        self.app: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.app.add_handler(TypeHandler(Update, self.on_update))
        core.services.outreach.register(TelegramPort(self))

    def mount(self, app: web.Application) -> None:
        if self.webhook_url:
            app.router.add_post("/telegram", self.webhook)
        app.on_startup.append(self._start)
        app.on_shutdown.append(self._stop)

    async def _start(self, _app: web.Application) -> None:
        await self.app.initialize()
        await self.app.start()
        await self._publish_commands()
        if self.webhook_url:
            await self.app.bot.set_webhook(
                self.webhook_url,
                secret_token=self.secret,
                max_connections=self.max_connections,
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info("telegram webhook set")
        else:
            await self.app.bot.delete_webhook()
            assert self.app.updater is not None
            await self.app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
            log.info("telegram polling started")

    async def _stop(self, _app: web.Application) -> None:
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def _publish_commands(self) -> None:
        for language, locale in COMMAND_LANGUAGES.items():
            t = Translator(locale)
            commands = [BotCommand(name, t(text)) for name, text in COMMANDS]
            await self.app.bot.set_my_commands(commands, language_code=language)

    async def webhook(self, request: web.Request) -> web.Response:
        """Check the secret, queue the update, answer 200 at once (work happens after)."""
        given = request.headers.get(SECRET_HEADER, "")
        # surrogateescape: a header with bytes that are not UTF-8 is a wrong secret, not a 500.
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.secret.encode()):
            return web.Response(status=403, text="bad secret")
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text="body too large")
        body = await request.read()
        try:
            data = json.loads(body)
            update_id = data.get("update_id") if isinstance(data, dict) else None
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                raise ValueError("not an update")
            update = Update.de_json(data, self.app.bot)
        # ValueError: bad UTF-8 or JSON; RecursionError: thousands of nested brackets; and PTB's
        # de_json fails with whatever a wrongly shaped field makes it trip on (AttributeError
        # for "message": "text", ...): every one of them is a bad request, not a server error.
        except Exception as exc:
            log.info("telegram update rejected: %s", type(exc).__name__)
            return web.Response(status=400, text="bad update")
        await self.app.update_queue.put(update)
        return web.Response(text="ok")

    async def on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        # A redelivered update (same update_id) is handled once, in any process.
        if not await self.deliveries.claim(str(update.update_id)):
            return
        if update.callback_query is not None:
            await self._on_button(update.callback_query)
        elif update.message is not None and update.message.from_user is not None:
            await self._on_message(update.message, update.message.from_user)
        elif update.my_chat_member is not None:
            await self._on_my_status(update.my_chat_member)
        elif update.chat_member is not None:
            await self._on_group_member(update.chat_member)
        elif update.chat_join_request is not None:
            await self._on_join_request(update.chat_join_request)

    async def _on_button(self, query: CallbackQuery) -> None:
        try:
            await query.answer()  # stop the button's spinner before the work
        except TelegramError as exc:
            # e.g. "query is too old" after a backlog: the tap still deserves its answer.
            log.info("telegram callback answer failed error=%s", type(exc).__name__)
        message = query.message
        chat_id = message.chat.id if message is not None else query.from_user.id
        in_group = message is not None and message.chat.type in GROUPS
        inbound = self._inbound(query.from_user, chat_id, in_group, menu_key=query.data or "HELP")
        await self._answer(inbound, query.from_user)

    async def _on_message(self, message: Message, user: User) -> None:
        text = clean_text(message.text or "", self.core.services.rules.limits.text_length)
        in_group = message.chat.type in GROUPS
        if in_group and not self._addressed_to_me(text):
            return
        extra: dict[str, Any] = {"text": text}
        command, _, args = text.partition(" ")
        if command.split("@")[0] == "/start" and REFERRAL.match(args.strip()):
            extra["referral"] = args.strip()
            extra["text"] = "/start"
        if message.photo:
            extra["media_id"] = message.photo[-1].file_id
        inbound = self._inbound(user, message.chat.id, in_group, **extra)
        await self._answer(inbound, user)

    def _addressed_to_me(self, text: str) -> bool:
        """In groups only commands count, and only those without @ or with our @name."""
        if not text.startswith("/"):
            return False
        head = text.split(" ", 1)[0]
        _, at, target = head.partition("@")
        return not at or target.lower() == (self.app.bot.username or "").lower()

    def _inbound(self, user: User, chat_id: int, in_group: bool, **extra: Any) -> Inbound:
        return Inbound(
            channel=CHANNEL,
            external_id=str(user.id),
            chat_id=str(chat_id),
            locale_hint=normalise_hint(user.language_code) or "en",
            display_name=user.first_name,
            is_group=in_group,
            **extra,
        )

    async def _answer(self, inbound: Inbound, user: User) -> None:
        reply = await self.core.dispatcher.handle(inbound)
        if reply is None:
            return
        if inbound.is_group and reply.private:
            # A member's own numbers never go to a group: DM them, point at the DM.
            sent = await self._send(user.id, reply)
            t = Translator(normalise_hint(user.language_code) or "en")
            pointer = (
                N_("I sent you the answer in a private chat.")
                if sent
                else N_("Please open a private chat with me first, then ask again.")
            )
            await self._send(int(inbound.chat_id), Reply(t(pointer)))
            return
        await self._send(int(inbound.chat_id), reply)

    async def _send(self, chat_id: int, reply: Reply) -> bool:
        try:
            await self.app.bot.send_message(
                chat_id,
                as_html(reply.text),
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard(reply),
            )
            return True
        except Forbidden:
            if chat_id > 0:
                await self._blocked(chat_id)
            return False
        except TelegramError as exc:
            log.warning("telegram send failed error=%s", type(exc).__name__)
            return False

    async def _on_my_status(self, change: ChatMemberUpdated) -> None:
        """In a private chat Telegram reports the person blocking the bot (kicked) and
        unblocking or restarting it (member): the identity follows, so pushes resume."""
        if change.chat.type != ChatType.PRIVATE:
            return
        status = change.new_chat_member.status
        if status == ChatMemberStatus.BANNED:
            await self._blocked(change.chat.id)
        elif status == ChatMemberStatus.MEMBER:
            async with self.core.services.db.transaction() as session:
                await identities.mark_reachable(session, CHANNEL, str(change.chat.id))

    async def _on_group_member(self, change: ChatMemberUpdated) -> None:
        """Someone came into or left a group: the core records it if it is a community's, and
        a one-person link that let the wrong person in is revoked."""
        person = change.new_chat_member.user
        if person.is_bot:
            return
        was, now = _in_chat(change.old_chat_member), _in_chat(change.new_chat_member)
        services, chat_id = self.core.services, change.chat.id
        if now and not was:
            link = change.invite_link.invite_link if change.invite_link is not None else None
            joined = await group_member_joined(
                services,
                chat_id,
                CHANNEL,
                str(person.id),
                link=link,
                display_name=person.first_name,
            )
            if joined in (GroupJoin.WRONG_PERSON, GroupJoin.WRONG_LINK) and link is not None:
                await self._revoke(chat_id, link)
            if joined is GroupJoin.WRONG_PERSON:
                # Below the community's tier: a forwarded link must not get round the gate.
                await self.remove_from_chat(chat_id, person.id)
        elif was and not now:
            await group_member_left(services, chat_id, CHANNEL, str(person.id))

    async def remove_from_chat(self, chat_id: int, user_id: int) -> None:
        """Ban and at once unban: out of the group, free to come back. Never raises."""
        bot = self.app.bot
        try:
            await bot.ban_chat_member(chat_id, user_id)
        except TelegramError as exc:
            log.warning("telegram remove failed chat=%s error=%s", chat_id, type(exc).__name__)
            return
        try:
            await bot.unban_chat_member(chat_id, user_id, only_if_banned=True)
        except TelegramError as exc:
            log.error(
                "telegram unban failed, someone stays banned chat=%s error=%s",
                chat_id,
                type(exc).__name__,
            )

    async def _revoke(self, chat_id: int, link: str) -> None:
        try:
            await self.app.bot.revoke_chat_invite_link(chat_id, link)
        except TelegramError as exc:
            log.warning("telegram link revoke failed chat=%s error=%s", chat_id, type(exc).__name__)

    async def _on_join_request(self, request: ChatJoinRequest) -> None:
        """The core decides by tier; a declined applicant is told why in the private chat that
        Telegram opens for the request (they may never have started the bot)."""
        person, chat_id = request.from_user, request.chat.id
        services = self.core.services
        decision = await join_request(
            services,
            chat_id,
            CHANNEL,
            str(person.id),
            locale_hint=person.language_code,
            display_name=person.first_name,
        )
        if decision is None:
            return
        try:
            if decision.approve:
                await self.app.bot.approve_chat_join_request(chat_id, person.id)
            else:
                await self.app.bot.decline_chat_join_request(chat_id, person.id)
        except TelegramError as exc:
            # e.g. an admin handled the request first: nothing left to do or to say.
            log.warning(
                "telegram join request answer failed chat=%s approve=%s error=%s",
                chat_id,
                decision.approve,
                type(exc).__name__,
            )
            return
        if decision.approve:
            await group_member_joined(
                services, chat_id, CHANNEL, str(person.id), display_name=person.first_name
            )
        elif decision.explanation is not None:
            await self._send(request.user_chat_id, decision.explanation)

    async def _blocked(self, user_id: int) -> None:
        """The person blocked the bot: recorded on the identity, never retried."""
        services = self.core.services
        async with services.db.transaction() as session:
            await identities.mark_unreachable(
                session, CHANNEL, str(user_id), services.clock.now(), "telegram:forbidden"
            )


def _in_chat(member: ChatMember) -> bool:
    """In the group: owner, admin, member, or restricted but still a member."""
    if isinstance(member, ChatMemberRestricted):
        return member.is_member
    return member.status in IN_CHAT


class TelegramPort(Port):
    """What the core may ask of Telegram: pushes, deep links, one-person group links."""

    channel = CHANNEL

    def __init__(self, telegram: TelegramChannel) -> None:
        self._telegram = telegram

    async def push(self, external_id: str, reply: Reply) -> bool:
        """To the person's private chat (whose id is their user id)."""
        if not external_id.isdigit():
            return False
        return await self._telegram._send(int(external_id), reply)

    async def invite_link(self, member: Member) -> InviteLink:
        bot = self._telegram.app.bot
        link = f"https://t.me/{bot.username}?start={REFERRAL_PREFIX}{member.invite_code}"
        services = self._telegram.core.services
        t = Translator(pick_locale(member.locale, None, services.settings.default_locale))
        text = t(
            N_("Join me as a member and get {points} welcome points!"),
            points=services.rules.invites.invitee_points,
        )
        return InviteLink("link", link, share_url=share_url(link, text))

    async def group_invite(self, community: Community, member: Member) -> GroupInvite | None:
        """A link that lets one person in for a day; kept, so the join tells who came."""
        if community.telegram_chat_id is None:
            return None
        services = self._telegram.core.services
        now = services.clock.now()
        expires = now + timedelta(hours=GROUP_LINK_HOURS)
        try:
            made = await self._telegram.app.bot.create_chat_invite_link(
                community.telegram_chat_id,
                expire_date=expires,
                member_limit=1,
                name=f"memberbot {community.slug}"[:32],
            )
        except TelegramError as exc:
            # Usually the bot is not an admin of the group (or lacks "invite users"): Telegram's
            # own description says which. Network errors are named only (their text may hold
            # the request URL, and so the token).
            said = exc.message if isinstance(exc, BadRequest | Forbidden) else ""
            log.warning(
                "telegram group link refused community=%s error=%s %s",
                community.slug,
                type(exc).__name__,
                said,
            )
            raise DomainError(
                N_("Sorry, something went wrong on our side. Please try again.")
            ) from exc
        async with services.db.transaction() as session:
            await communities.save_link(
                session, made.invite_link, community.id, member.id, now, expires
            )
        return GroupInvite("personal_link", made.invite_link, hours=GROUP_LINK_HOURS)

    async def remove_from_group(self, community: Community, external_id: str) -> None:
        """Out of the group, free to come back. Never raises."""
        if community.telegram_chat_id is None or not external_id.isdigit():
            return
        await self._telegram.remove_from_chat(community.telegram_chat_id, int(external_id))


def build(core: Core) -> TelegramChannel:
    return TelegramChannel(core)
