"""Telegram in: a python-telegram-bot Application in webhook or polling mode.

Webhook mode (TELEGRAM_WEBHOOK_URL set) feeds POST /telegram into PTB's update queue;
otherwise PTB polls getUpdates. Every update becomes an `Inbound` (a message, a button, or a
core event such as a group join or a block) for the core, and every `Reply` goes back out
through the shared `TelegramSender`. Nothing here decides anything about members.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from aiohttp import web
from telegram import (
    CallbackQuery,
    ChatJoinRequest,
    ChatMember,
    ChatMemberRestricted,
    ChatMemberUpdated,
    Message,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.channels.telegram_api import COMMAND_LANGUAGES, TelegramSender
from bot.channels.telegram_flow import PerMemberProcessor
from bot.channels.telegram_shapes import Malformed, check_update
from bot.core.deliveries import Deliveries
from bot.core.events import AskedToJoin, Blocked, Event, JoinedGroup, LeftGroup, Unblocked
from bot.core.i18n import Translator, normalise_hint
from bot.core.messages import Inbound, Reply, clean_text
from bot.core.notices import sent_privately
from bot.http.limits import MAX_BODY, read_body

if TYPE_CHECKING:
    from bot.app import Core

log = logging.getLogger("memberbot.telegram")

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = [
    "message",
    "callback_query",
    "chat_member",
    "my_chat_member",
    "chat_join_request",
]
REFERRAL = re.compile(r"^(?:ref|fs)_[A-Za-z0-9_-]{1,60}$")  # invites, flash-sale claims
GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)
# Set by `webhook` while it handles an update: a Bot API call the webhook's response makes
# (Telegram runs a {"method": ...} body as that call). A group press's toast goes there: no
# call of our own (its HTTP client was half the CPU of a press), and no wait for one.
_WEBHOOK_CALL: ContextVar[list[dict[str, Any]] | None] = ContextVar(
    "telegram_webhook_call", default=None
)
# Set by `webhook` too: `on_update` notes there that it failed. PTB logs and swallows a
# handler's exception; a 200 for it would tell Telegram never to redeliver the update.
_WEBHOOK_FAILED: ContextVar[list[bool] | None] = ContextVar("telegram_webhook_failed", default=None)
IN_CHAT = (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.MEMBER)
# An update whose handling failed this many times (a bug it always trips on) is given up:
# stored as answered, so Telegram stops redelivering it and the updates behind it move on.
FAILURES_BEFORE_GIVING_UP = 3


class _StillHeld(Exception):
    """A redelivery waited its time for another process's lease on the update, in vain."""


class TelegramChannel:
    name = CHANNEL

    def __init__(self, core: Core, sender: TelegramSender, *, max_connections: int = 40) -> None:
        settings = core.services.settings
        self.core = core
        self.sender = sender
        self.webhook_url = settings.telegram_webhook_url
        self.secret = settings.telegram_webhook_secret or ""
        if self.webhook_url and not self.secret:
            raise ValueError("TELEGRAM_WEBHOOK_SECRET must be set with TELEGRAM_WEBHOOK_URL")
        self.max_connections = max_connections
        self.deliveries = Deliveries(core.services.cache, CHANNEL)
        builder = Application.builder().bot(sender.bot).concurrent_updates(PerMemberProcessor())
        if self.webhook_url:
            builder = builder.updater(None)
        self.app: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.app.add_handler(TypeHandler(Update, self.on_update))

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
        """The command menu in each language Telegram can tell apart, from the core's words."""
        listed = self.core.dispatcher.vocabulary.listed("summary")
        commands = [
            (language or "", action.commands[0], Translator(locale)(action.summary))
            for language, locale in COMMAND_LANGUAGES.items()
            for action in listed
            if action.commands and action.summary
        ]
        await self.sender.publish_commands(commands)

    async def webhook(self, request: web.Request) -> web.Response:
        """Check the secret, process the update, then answer 200.

        Telegram never redelivers an update it got a 200 for, so the 200 comes only once the
        update is handled: a process that dies before answering, or whose handling failed
        (answered 500), leaves it to Telegram's redelivery (see `on_update` for how a
        redelivery finds its work)."""
        given = request.headers.get(SECRET_HEADER, "")
        # surrogateescape: a header with bytes that are not UTF-8 is a wrong secret, not a 500.
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self.secret.encode()):
            return web.Response(status=403, text="bad secret")
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text="body too large")
        body = await read_body(request)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON; thousands of brackets
            log.info("telegram update rejected: %s", type(exc).__name__)
            return web.Response(status=400, text="bad update")
        try:
            check_update(data)
        except Malformed as exc:
            # Only a holder of the secret gets here: say it once, without the content.
            log.warning("telegram update dropped: field %s has the wrong shape", exc)
            return web.Response(status=400, text="bad update")
        try:
            update = Update.de_json(data, self.app.bot)
        # PTB's de_json fails with whatever an odd field that check_update does not read makes
        # it trip on: a bad request, not a server error.
        except Exception as exc:
            log.warning("telegram update dropped: %s", type(exc).__name__)
            return web.Response(status=400, text="bad update")
        # Through the update processor: one member's updates still run one at a time.
        processor = self.app.update_processor
        call: list[dict[str, Any]] = []
        failed: list[bool] = []
        token, failing = _WEBHOOK_CALL.set(call), _WEBHOOK_FAILED.set(failed)
        try:
            await processor.process_update(update, self.app.process_update(update))
        finally:
            _WEBHOOK_CALL.reset(token)
            _WEBHOOK_FAILED.reset(failing)
        if failed:
            # Not handled (logged why): Telegram redelivers, and the redelivery finds the
            # lease given back and no answer, so it does the work afresh (or finds the answer
            # of another process it waited for in vain).
            return web.Response(status=500, text="update not handled")
        if call:
            return web.json_response(call[0])
        return web.Response(text="ok")

    async def on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Handle an update once, in any process, whatever Telegram redelivers.

        The work runs under a short lease on the update id (renewed while it runs) and is
        marked done at the end. A redelivery that finds it done is dropped; one that finds it
        leased waits for the end (and if the end does not come in time, is not answered 200:
        Telegram's next redelivery finds the answer, or the work to do); one whose first
        handler died (its lease lapsed) does it. An update whose handling fails
        FAILURES_BEFORE_GIVING_UP times is marked done with nothing done (logged)."""
        try:
            await self._once(update)
        except _StillHeld:
            # Not a failure of the handler: the holder may still answer it, or fail (then
            # Telegram's next redelivery does the work). Either way not done here: a 500.
            log.info("telegram update still held elsewhere update_id=%s", update.update_id)
            _not_handled()
        except Exception:
            _not_handled()
            raise

    async def _once(self, update: Update) -> None:
        update_id = str(update.update_id)
        while True:
            async with self.deliveries.lease_on(update_id) as held:
                if held.answer is not None:
                    _answer_again(held.answer)
                    return
                if held.taken:
                    try:
                        await self._dispatch(update)
                    except Exception:
                        failures = await self.deliveries.failed(update_id)
                        if failures < FAILURES_BEFORE_GIVING_UP:
                            raise
                        log.exception(
                            "telegram update given up after %d failures update_id=%s",
                            failures,
                            update_id,
                        )
                        await held.done("failed")
                        return
                    # A toast that went as the webhook's response is kept as the answer: if
                    # Telegram never got that response it redelivers, and the toast goes again.
                    call = _WEBHOOK_CALL.get()
                    await held.done(json.dumps(call[0]) if call else "done")
                    return
            waited = await self.deliveries.wait(update_id, 2 * self.deliveries.lease)
            if waited.answer is not None:
                _answer_again(waited.answer)
                return
            if not waited.free:
                raise _StillHeld(update_id)

    async def _dispatch(self, update: Update) -> None:
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
        """The core's answer, then the query's answer (its toast, if any), then the reply.

        A reply with a toast to a button in a group is answered by the toast alone, at once:
        nothing is posted in the group and nothing is sent from here (what the person is owed
        privately, the handler queued in the outbox, whose sends do not hold the toast back).
        When the handler says the bot cannot write to the person yet, the toast's link opens
        their private chat with the button's action as /start payload.
        """
        message = query.message
        chat_id = message.chat.id if message is not None else query.from_user.id
        in_group = message is not None and message.chat.type in GROUPS
        inbound = _inbound(
            query.from_user,
            chat_id,
            in_group,
            menu_key=query.data or "HELP",
            message_id=f"cb:{query.id}",  # the same press when Telegram redelivers it
        )
        reply = await self.core.dispatcher.handle(inbound)
        if reply is not None and reply.toast is not None and in_group:
            url = self._start_link(query.data) if reply.open_private else None
            await self._answer_query(query, reply.toast, url, by_webhook=True)
            return
        await self._answer_query(query, reply.toast if reply is not None else None)
        await self._deliver(inbound, query.from_user, reply)

    async def _answer_query(
        self,
        query: CallbackQuery,
        toast: str | None,
        url: str | None = None,
        *,
        by_webhook: bool = False,
    ) -> None:
        """`by_webhook`: the answer is all the update gets (nothing is sent after it), so it
        may go as the webhook's response, when there is one."""
        call = _WEBHOOK_CALL.get()
        if by_webhook and call is not None and not call:
            answer: dict[str, Any] = {
                "method": "answerCallbackQuery",
                "callback_query_id": query.id,
            }
            if toast:
                answer["text"] = toast[:200]
            if url:
                answer["url"] = url
            call.append(answer)
            return
        try:
            await query.answer(text=toast[:200] if toast else None, url=url)
        except TelegramError as exc:
            # e.g. "query is too old" after a backlog: the tap still deserves its answer.
            log.info("telegram callback answer failed error=%s", type(exc).__name__)

    def _start_link(self, data: str | None) -> str | None:
        """t.me/<bot>?start=<payload> for a button whose action is also a deep link."""
        payload = (data or "").replace(":", "_", 1)
        username = self.app.bot.username if self.app.bot is not None else None
        if not username or not REFERRAL.match(payload):
            return None
        return f"https://t.me/{username}?start={payload}"

    async def _on_message(self, message: Message, user: User) -> None:
        text = clean_text(message.text or "", self.core.services.rules.limits.text_length)
        in_group = message.chat.type in GROUPS
        replied = message.reply_to_message
        author = replied.from_user if replied is not None else None
        # A reply to one of the bot's posts (a ticket in the staff chat) is meant for the bot.
        to_me = in_group and author is not None and author.id == self.app.bot.id
        if in_group and not (self._addressed_to_me(text) or to_me):
            return
        extra: dict[str, Any] = {"text": text}
        if to_me and replied is not None:
            extra["reply_to"] = str(replied.message_id)
        command, _, args = text.partition(" ")
        if command.split("@")[0] == "/start" and REFERRAL.match(args.strip()):
            extra["referral"] = args.strip()
            extra["text"] = "/start"
        if message.photo:
            extra["media_id"] = message.photo[-1].file_id
        extra["message_id"] = f"{message.chat.id}:{message.message_id}"
        await self._answer(_inbound(user, message.chat.id, in_group, **extra), user)

    def _addressed_to_me(self, text: str) -> bool:
        """In groups only commands count, and only those without @ or with our @name."""
        if not text.startswith("/"):
            return False
        head = text.split(" ", 1)[0]
        _, at, target = head.partition("@")
        return not at or target.lower() == (self.app.bot.username or "").lower()

    async def _answer(self, inbound: Inbound, user: User) -> None:
        await self._deliver(inbound, user, await self.core.dispatcher.handle(inbound))

    async def _deliver(self, inbound: Inbound, user: User, reply: Reply | None) -> None:
        if reply is None:
            return
        if inbound.is_group and reply.private:
            # A member's own numbers never go to a group: DM them, point at the DM.
            sent = await self._send(str(user.id), reply)
            t = Translator(normalise_hint(user.language_code) or "en")
            await self._send(inbound.chat_id, Reply(sent_privately(t, sent)))
            return
        await self._send(inbound.chat_id, reply)

    async def _send(self, chat_id: str, reply: Reply) -> bool:
        delivery = await self.sender.send(chat_id, reply)
        if delivery.reason == "forbidden" and not chat_id.startswith("-"):
            await self._event(chat_id, Blocked(reason="forbidden"))
        return delivery.sent

    async def _event(self, user_id: str, event: Event, user: User | None = None) -> None:
        """Tell the core what Telegram reported about a person."""
        await self.core.dispatcher.handle(
            Inbound(
                channel=CHANNEL,
                external_id=user_id,
                chat_id=user_id,
                event=event,
                locale_hint=normalise_hint(user.language_code) if user else None,
                display_name=user.first_name if user else None,
            )
        )

    async def _on_my_status(self, change: ChatMemberUpdated) -> None:
        """In a private chat Telegram reports the person blocking the bot (kicked) and
        unblocking or restarting it (member)."""
        if change.chat.type != ChatType.PRIVATE:
            return
        status = change.new_chat_member.status
        if status == ChatMemberStatus.BANNED:
            await self._event(str(change.chat.id), Blocked(reason="forbidden"))
        elif status == ChatMemberStatus.MEMBER:
            await self._event(str(change.chat.id), Unblocked())

    async def _on_group_member(self, change: ChatMemberUpdated) -> None:
        """Someone came into or left a group."""
        person = change.new_chat_member.user
        if person.is_bot:
            return
        was, now = _in_chat(change.old_chat_member), _in_chat(change.new_chat_member)
        group = str(change.chat.id)
        if now and not was:
            link = change.invite_link.invite_link if change.invite_link is not None else None
            await self._event(str(person.id), JoinedGroup(group, link), person)
        elif was and not now:
            await self._event(str(person.id), LeftGroup(group), person)

    async def _on_join_request(self, request: ChatJoinRequest) -> None:
        event = AskedToJoin(str(request.chat.id), str(request.user_chat_id))
        await self._event(str(request.from_user.id), event, request.from_user)


def _inbound(user: User, chat_id: int, in_group: bool, **extra: Any) -> Inbound:
    return Inbound(
        channel=CHANNEL,
        external_id=str(user.id),
        chat_id=str(chat_id),
        locale_hint=normalise_hint(user.language_code) or "en",
        display_name=user.first_name,
        is_group=in_group,
        **extra,
    )


def _in_chat(member: ChatMember) -> bool:
    """In the group: owner, admin, member, or restricted but still a member."""
    if isinstance(member, ChatMemberRestricted):
        return member.is_member
    return member.status in IN_CHAT


def _not_handled() -> None:
    """The webhook's update was not handled: it answers 500, and Telegram redelivers."""
    failed = _WEBHOOK_FAILED.get()
    if failed is not None:
        failed.append(True)


def _answer_again(stored: str) -> None:
    """A redelivered update's webhook response: the call its first delivery answered with."""
    call = _WEBHOOK_CALL.get()
    if stored.startswith("{") and call is not None and not call:
        call.append(json.loads(stored))
