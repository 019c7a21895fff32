"""The Telegram channel end to end: the real PTB Application inside `memberbot serve`'s aiohttp
app, fed over HTTP (webhook mode) or by getUpdates (polling mode), answering through a local fake
of the Bot API. Every test runs on SQLite + in-process cache and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bot.app import Core, build_core
from bot.channels import telegram_flow
from bot.channels.telegram import TelegramChannel
from bot.core.clock import FixedClock
from bot.core.messages import Inbound, Reply
from bot.http.server import create_app
from storage import identities, ledger, members
from storage.cache import Keys
from tests.conftest import PRIVACY_LINE, make_settings, outbox_idle, sending_outbox
from tests.fakes.telegram import BOT_ID, BOT_USERNAME, TOKEN, FakeTelegram, running_fake

SECRET = "tg-webhook-secret-0123456789"
WEBHOOK_URL = "https://bot.example.test/telegram"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
GROUP = -1001234567890

HELP = (
    "Hi! Here is what I can do:\n"
    "• Check in daily for points: send “checkin” or /checkin\n"
    "• Your points and history: “points” or /points\n"
    "• Your tier and benefits: “tier” or /tier\n"
    "• Invite friends, both of you get points: “invite” or /invite\n"
    "• Interest communities: “communities” or /communities\n"
    "• Claim a flash sale: “claim CODE” or /claim CODE\n"
    "• Points mall: “rewards”, then “redeem SLUG”\n"
    "• My vouchers: “vouchers”\n"
    "• Lottery: “draw SLUG”\n"
    "• Tasks for points: “tasks”\n"
    "• Make up a missed check-in: “makeup”\n"
    "• Badges: “badges”; this month's leaderboard: “top”\n"
    "• File a complaint: “complain TEXT” or /complain\n"
    "• Your complaints: “tickets” or /tickets\n"
    "• Link your WeChat and Telegram accounts: /link\n"
    "• Language: /lang zh_CN | zh_TW | en\n"
    "• Birthday (double points): /birthday MM-DD\n"
    "• Privacy: /privacy, /mydata, /forgetme"
)
CHECKED_IN = "Checked in! +5 points, 1-day streak. Balance: 5.\nTomorrow: +5 points."
FIRST_CHECK_IN = CHECKED_IN + PRIVACY_LINE  # a new member's first answer
NO_POINTS = "Your points: 0\nNo points yet. Check in every day to earn some!"
MENU = [
    [("Check in", "CHECKIN"), ("Points", "POINTS")],
    [("Tier", "TIER"), ("Invite", "INVITE")],
    [("Communities", "COMMUNITIES"), ("Rewards", "REWARDS")],
    [("Complain", "COMPLAIN"), ("Link accounts", "LINK")],
]
SENT_PRIVATELY = "I sent you the answer in a private chat."

_update_ids = itertools.count(500_000_000)
_users = itertools.count(7_000_001)


# -- updates as Telegram sends them ---------------------------------------------------------


def new_user() -> int:
    return next(_users)


def user(user_id: int, language_code: str | None = "en", first_name: str = "Ann") -> dict[str, Any]:
    found: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language_code is not None:
        found["language_code"] = language_code
    return found


def message_update(
    user_id: int,
    text: str,
    *,
    chat_id: int | None = None,
    language_code: str | None = "en",
    first_name: str = "Ann",
    update_id: int | None = None,
) -> dict[str, Any]:
    """A text message in the private chat with `user_id`, or in group `chat_id`."""
    chat_id = user_id if chat_id is None else chat_id
    chat: dict[str, Any] = (
        {"id": chat_id, "type": "private", "first_name": first_name}
        if chat_id > 0
        else {"id": chat_id, "type": "supergroup", "title": "Tea lovers"}
    )
    message: dict[str, Any] = {
        "message_id": next(_update_ids) % 100_000,
        "date": int(time.time()),
        "chat": chat,
        "from": user(user_id, language_code, first_name),
        "text": text,
    }
    if text.startswith("/"):
        length = len(text.split(" ", 1)[0])
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return {"update_id": next(_update_ids) if update_id is None else update_id, "message": message}


def callback_update(
    user_id: int, data: str, *, chat_id: int | None = None, language_code: str = "en"
) -> dict[str, Any]:
    """A tap on an inline button under one of the bot's messages."""
    chat_id = user_id if chat_id is None else chat_id
    chat_type = "private" if chat_id > 0 else "supergroup"
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": f"cbq-{uuid.uuid4().hex[:12]}",
            "from": user(user_id, language_code),
            "chat_instance": "-4242",
            "data": data,
            "message": {
                "message_id": 7,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": chat_type},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Memberbot"},
                "text": "menu",
            },
        },
    }


def my_status_update(user_id: int, old: str, new: str) -> dict[str, Any]:
    """Telegram's notice that the person blocked ("kicked") or restarted ("member") the bot."""
    bot = {"id": BOT_ID, "is_bot": True, "first_name": "Memberbot", "username": BOT_USERNAME}

    def status(name: str) -> dict[str, Any]:
        return {"user": bot, "status": name, **({"until_date": 0} if name == "kicked" else {})}

    return {
        "update_id": next(_update_ids),
        "my_chat_member": {
            "chat": {"id": user_id, "type": "private", "first_name": "Ann"},
            "from": user(user_id),
            "date": int(time.time()),
            "old_chat_member": status(old),
            "new_chat_member": status(new),
        },
    }


def group_chat(chat_id: int = GROUP) -> dict[str, Any]:
    return {"id": chat_id, "type": "supergroup", "title": "Tea lovers"}


def restricted(person: dict[str, Any], *, is_member: bool) -> dict[str, Any]:
    """A ChatMemberRestricted (muted; `is_member` false once they left), every field Telegram
    sends."""
    rights = [
        "can_send_messages",
        "can_send_audios",
        "can_send_documents",
        "can_send_photos",
        "can_send_videos",
        "can_send_video_notes",
        "can_send_voice_notes",
        "can_send_polls",
        "can_send_other_messages",
        "can_add_web_page_previews",
        "can_react_to_messages",
        "can_change_info",
        "can_invite_users",
        "can_pin_messages",
        "can_manage_topics",
        "can_edit_tag",
    ]
    return {
        "user": person,
        "status": "restricted",
        "is_member": is_member,
        **dict.fromkeys(rights, False),
        "until_date": 0,
    }


def chat_member_update(
    person: dict[str, Any],
    old: str | dict[str, Any],
    new: str | dict[str, Any],
    *,
    chat_id: int = GROUP,
    invite_link: dict[str, Any] | None = None,
    by: dict[str, Any] | None = None,
    via_join_request: bool = False,
) -> dict[str, Any]:
    """Telegram's ChatMemberUpdated for `person` in a group: "left" -> "member" is a join
    (`invite_link` is the link they used), "member" -> "left"/"kicked" a leave; `by` is the
    performer (the person themself unless an admin or the bot acted). A status is a name or
    a whole ChatMember object (see `restricted`)."""

    def status(name: str | dict[str, Any]) -> dict[str, Any]:
        if isinstance(name, dict):
            return name
        return {"user": person, "status": name, **({"until_date": 0} if name == "kicked" else {})}

    change: dict[str, Any] = {
        "chat": group_chat(chat_id),
        "from": person if by is None else by,
        "date": int(time.time()),
        "old_chat_member": status(old),
        "new_chat_member": status(new),
    }
    if invite_link is not None:
        change["invite_link"] = invite_link
    if via_join_request:
        change["via_join_request"] = True
    return {"update_id": next(_update_ids), "chat_member": change}


def join_request_update(
    user_id: int,
    *,
    chat_id: int = GROUP,
    language_code: str | None = "en",
    invite_link: dict[str, Any] | None = None,
    update_id: int | None = None,
) -> dict[str, Any]:
    """Telegram's ChatJoinRequest: `user_chat_id` is the private chat the bot may write to
    about the request, even when the person never started the bot."""
    request: dict[str, Any] = {
        "chat": group_chat(chat_id),
        "from": user(user_id, language_code),
        "user_chat_id": user_id,
        "date": int(time.time()),
        "bio": "Tea and cats",
    }
    if invite_link is not None:
        request["invite_link"] = invite_link
    return {
        "update_id": next(_update_ids) if update_id is None else update_id,
        "chat_join_request": request,
    }


# -- the app under test -----------------------------------------------------------------------


@dataclass
class TelegramBot:
    fake: FakeTelegram
    core: Core
    channel: TelegramChannel
    session: ClientSession
    inbounds: list[Inbound] = field(default_factory=list)
    # Bot API calls the app made in its webhook responses (Telegram makes them; so does post).
    webhook_calls: list[dict[str, Any]] = field(default_factory=list)

    async def post(
        self, body: dict[str, Any] | bytes | str, *, secret: str | None = SECRET, **headers: str
    ) -> int:
        """POST to /telegram as Telegram does; returns the HTTP status."""
        if secret is not None:
            headers[HEADER] = secret
        data = json.dumps(body) if isinstance(body, dict) else body
        headers.setdefault("Content-Type", "application/json")
        async with self.session.post("/telegram", data=data, headers=headers) as response:
            await response.read()
            status = response.status
            call = await response.json() if response.content_type == "application/json" else None
        if (
            status == 200 and isinstance(call, dict) and "method" in call
        ):  # a Bot API call in the webhook's response: Telegram makes it
            self.webhook_calls.append(dict(call))
            method = call.pop("method")
            async with self.session.post(
                f"{self.fake.url}/bot{self.fake.token}/{method}", json=call
            ) as made:
                await made.read()
        return status

    async def identity(self, user_id: int) -> Any:
        async with self.core.services.db.sessions() as session:
            return await identities.get(session, "telegram", str(user_id))

    async def idle(self, timeout: float = 5) -> None:
        """Wait until PTB has no update queued or in progress, twice in a row (an update
        taken off the queue is in neither place for a moment)."""
        app = self.channel.app
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            assert time.monotonic() < deadline, "updates still in progress"
            await asyncio.sleep(0.01)
            busy = app.update_processor.current_concurrent_updates
            quiet = quiet + 1 if app.update_queue.empty() and not busy else 0
        await outbox_idle(self.core)  # and what the updates made the bot push went out

    async def reachable_becomes(self, user_id: int, expected: bool, timeout: float = 5) -> Any:
        """Wait until the identity's `unreachable` flag is `not expected`; returns the row."""
        deadline = time.monotonic() + timeout
        while True:
            found = await self.identity(user_id)
            if found is not None and found.unreachable is not expected:
                return found
            assert time.monotonic() < deadline, f"identity {user_id} reachable != {expected}"
            await asyncio.sleep(0.02)

    async def balance(self, user_id: int) -> int:
        async with self.core.services.db.sessions() as session:
            member = await members.find_by_identity(session, "telegram", str(user_id))
            return 0 if member is None else await ledger.balance_of(session, member.id)


StartBot = Callable[..., Awaitable[TelegramBot]]


def channel_of(app: web.Application) -> TelegramChannel:
    for hook in app.on_startup:
        owner = getattr(hook, "__self__", None)
        if isinstance(owner, TelegramChannel):
            return owner
    raise AssertionError("no Telegram channel mounted")


def record_inbounds(core: Core, into: list[Inbound]) -> None:
    """Wrap the dispatcher so the test sees every Inbound the channel hands to the core."""
    handle = core.dispatcher.handle

    async def recording(msg: Inbound) -> Reply | None:
        into.append(msg)
        return await handle(msg)

    core.dispatcher.handle = recording  # type: ignore[method-assign]


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with running_fake() as started:
        yield started


@pytest.fixture
def fast_private_chats(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 1/s per private chat spacing is the flow tests' subject; here it would only slow
    every two-message exchange by up to a second."""
    monkeypatch.setattr(telegram_flow, "PRIVATE_PER_SECOND", 1000)


@pytest.fixture(autouse=True)
def timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """PTB 22's RetryAfter reads its own int `retry_after` in __init__, which warns
    (PTBDeprecationWarning) and, under filterwarnings=error, turns every 429 into a crash of
    the update. Opting in to PTB's timedelta form, as PTB suggests, avoids the warning."""
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def start_bot(
    backend: tuple[str, str | None],
    clock: FixedClock,
    fake: FakeTelegram,
    fast_private_chats: None,
) -> AsyncIterator[StartBot]:
    """`await start_bot()` serves the app in webhook mode; `start_bot(webhook=False)` polls."""
    database_url, redis_url = backend
    opened: list[tuple[TestServer, ClientSession, Core]] = []

    async def start(*, webhook: bool = True, **extra: object) -> TelegramBot:
        settings: dict[str, object] = {
            "telegram_token": TOKEN,
            "telegram_api_base": fake.url,
        }
        if webhook:
            settings |= {"telegram_webhook_url": WEBHOOK_URL, "telegram_webhook_secret": SECRET}
        core = await build_core(
            make_settings(database_url, redis_url, **(settings | extra)),
            clock=clock,
            keys=Keys(prefix=f"mbtest:{uuid.uuid4().hex}"),
            migrate_sqlite=False,
        )
        app = sending_outbox(create_app(core, background=False))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()  # on_startup: PTB initialises, getMe, commands, webhook
        session = ClientSession(base_url=str(server.make_url("/")))
        opened.append((server, session, core))
        bot = TelegramBot(fake, core, channel_of(app), session)
        record_inbounds(core, bot.inbounds)
        return bot

    yield start
    for server, session, core in reversed(opened):
        await session.close()
        await server.close()  # on_shutdown: PTB stops
        await core.close()


@pytest.fixture
async def tg(start_bot: StartBot) -> TelegramBot:
    return await start_bot()


# -- webhook mode: startup ----------------------------------------------------------------------


async def test_startup_sets_the_webhook_with_secret_and_allowed_updates(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    assert fake.methods()[0] == "getMe"
    assert fake.calls_of("deleteWebhook") == [] and fake.calls_of("getUpdates") == []
    [hook] = fake.webhooks
    assert hook["url"] == WEBHOOK_URL
    assert hook["secret_token"] == SECRET
    assert hook["max_connections"] == 40
    assert {"message", "callback_query", "chat_member", "chat_join_request"} <= set(
        hook["allowed_updates"]
    )
    assert tg.channel.app.bot.username == BOT_USERNAME


async def test_startup_publishes_commands_in_english_and_chinese(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    assert set(fake.commands) == {None, "zh"}
    assert fake.commands[None] == [
        {"command": "checkin", "description": "Check in for today's points"},
        {"command": "points", "description": "Your points and recent history"},
        {"command": "tier", "description": "Your tier, benefits and progress"},
        {"command": "invite", "description": "Your invite link: friends and you get points"},
        {"command": "communities", "description": "Interest communities to join"},
        {"command": "rewards", "description": "Spend your points"},
        {"command": "vouchers", "description": "Your vouchers"},
        {"command": "draw", "description": "Draw a prize for points"},
        {"command": "tasks", "description": "Tasks that earn points"},
        {"command": "makeup", "description": "Make up a missed check-in"},
        {"command": "badges", "description": "Your badges"},
        {"command": "top", "description": "This month's check-in leaderboard"},
        {"command": "complain", "description": "File a complaint"},
        {"command": "tickets", "description": "Your complaints and their state"},
        {"command": "link", "description": "Link your WeChat and Telegram accounts"},
        {"command": "lang", "description": "Choose your language"},
        {"command": "birthday", "description": "Set your birthday for double points"},
        {"command": "privacy", "description": "What we keep about you, and why"},
        {"command": "mydata", "description": "See what we keep about you"},
        {"command": "forgetme", "description": "Erase your personal data"},
        {"command": "help", "description": "What I can do"},
    ]
    chinese = {c["command"]: c["description"] for c in fake.commands["zh"]}
    assert [c["command"] for c in fake.commands["zh"]] == [
        c["command"] for c in fake.commands[None]
    ]
    assert chinese["checkin"] == "签到领取今日积分"
    assert chinese["points"] == "我的积分和最近明细"


# -- webhook mode: a message in, a reply out ------------------------------------------------------


async def test_checkin_is_acknowledged_only_once_handled_and_answered_in_html(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    gate, started = asyncio.Event(), asyncio.Event()
    handle = tg.core.dispatcher.handle

    async def slow(msg: Inbound) -> Reply | None:
        started.set()
        await gate.wait()
        return await handle(msg)

    tg.core.dispatcher.handle = slow  # type: ignore[method-assign]
    ann = new_user()
    # Telegram never redelivers what got a 200: no 200 while the update is not handled.
    posting = asyncio.create_task(tg.post(message_update(ann, "/checkin")))
    await asyncio.wait_for(started.wait(), 5)
    assert not posting.done()
    assert fake.sent == []
    gate.set()
    assert await asyncio.wait_for(posting, 5) == 200
    [sent] = fake.sent
    assert sent.chat_id == ann
    assert sent.text == FIRST_CHECK_IN
    assert sent.parse_mode == "HTML"
    assert sent.reply_markup is None
    assert await tg.balance(ann) == 5


async def test_a_redelivery_after_the_first_handler_died_is_handled(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    update = message_update(ann, "/checkin")
    cache = tg.core.services.cache
    # What a process killed mid-update leaves behind: its lease, never renewed again.
    tg.channel.deliveries.lease = 0.3
    claim = cache.keys.inbound_claim("telegram", str(update["update_id"]))
    await cache.set(claim, "a-dead-process", 0.3)

    assert await tg.post(update) == 200
    handled = [s.text for s in fake.sent]
    assert await tg.post(update) == 200  # once done, a redelivery changes nothing

    assert handled == [FIRST_CHECK_IN]
    assert [s.text for s in fake.sent] == [FIRST_CHECK_IN]
    assert await tg.balance(ann) == 5


async def test_an_update_whose_handling_failed_is_not_answered_200_and_its_redelivery_works(
    tg: TelegramBot, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = new_user()
    update = message_update(ann, "/checkin")
    handle = tg.core.dispatcher.handle

    async def broken(_inbound: Any) -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(tg.core.dispatcher, "handle", broken)
    failed = await tg.post(update)  # a 200 would tell Telegram never to redeliver it
    monkeypatch.setattr(tg.core.dispatcher, "handle", handle)
    redelivered = await tg.post(update)
    again = await tg.post(update)

    assert (failed, redelivered, again) == (500, 200, 200)
    assert [s.text for s in fake.sent] == [FIRST_CHECK_IN]
    assert await tg.balance(ann) == 5


async def test_a_poison_update_is_given_up_after_three_failures(
    tg: TelegramBot, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    ann = new_user()
    update = message_update(ann, "/checkin")
    handle = tg.core.dispatcher.handle

    async def broken(_inbound: Any) -> None:
        raise ValueError("a bug this update always trips on")

    monkeypatch.setattr(tg.core.dispatcher, "handle", broken)
    statuses = [await tg.post(update) for _ in range(3)]
    monkeypatch.setattr(tg.core.dispatcher, "handle", handle)
    later = await tg.post(update)  # stored as answered: not tried again

    # Telegram redelivers a 500: a 200 at last lets the updates behind it move on.
    assert (statuses, later) == ([500, 500, 200], 200)
    assert fake.sent == []
    assert await tg.balance(ann) == 0
    assert [r.getMessage() for r in caplog.records if r.name == "memberbot.telegram"] == [
        f"telegram update given up after 3 failures update_id={update['update_id']}"
    ]


async def test_a_redelivery_that_waited_in_vain_for_another_process_is_not_answered_200(
    tg: TelegramBot, fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = new_user()
    update = message_update(ann, "/checkin")
    cache = tg.core.services.cache
    tg.channel.deliveries.lease = 0.05  # a redelivery waits 2 * lease for the holder
    claim = cache.keys.inbound_claim("telegram", str(update["update_id"]))
    await cache.set(claim, "another-process", 30)  # slow, still holding it
    handle = tg.core.dispatcher.handle

    async def broken(_inbound: Any) -> None:
        raise ConnectionError("the database went away")

    waited = [await tg.post(update) for _ in range(3)]  # a 200 would lose the update
    await cache.delete(claim)  # the other process failed: no answer, lease given back
    monkeypatch.setattr(tg.core.dispatcher, "handle", broken)
    failed = await tg.post(update)  # the first failure: the waits were none
    monkeypatch.setattr(tg.core.dispatcher, "handle", handle)
    handled = await tg.post(update)

    assert (waited, failed, handled) == ([500, 500, 500], 500, 200)
    assert [s.text for s in fake.sent] == [FIRST_CHECK_IN]
    assert await tg.balance(ann) == 5


async def test_a_redelivery_that_waited_in_vain_gets_the_answer_stored_meanwhile(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    update = message_update(ann, "/checkin")
    cache = tg.core.services.cache
    tg.channel.deliveries.lease = 0.05
    update_id = str(update["update_id"])
    claim = cache.keys.inbound_claim("telegram", update_id)
    await cache.set(claim, "another-process", 30)  # slow, still holding it

    waited = await tg.post(update)
    # ... and it handled the update in the end: its answer stored, its lease given back.
    await cache.answer_and_release(
        cache.keys.inbound_reply("telegram", update_id), "done", 30, claim, "another-process"
    )
    again = await tg.post(update)

    assert (waited, again) == (500, 200)
    assert fake.sent == []  # the other process's work, not redone here


@pytest.mark.parametrize("secret", ["wrong-secret", "", None, SECRET[:-1], SECRET + "x"])
async def test_wrong_or_missing_secret_is_403(
    tg: TelegramBot, fake: FakeTelegram, secret: str | None
) -> None:
    assert await tg.post(message_update(new_user(), "/checkin"), secret=secret) == 403
    await asyncio.sleep(0.05)
    assert tg.inbounds == [] and fake.sent == []


async def test_secret_header_that_is_not_utf8_is_403(tg: TelegramBot) -> None:
    body = json.dumps(message_update(new_user(), "/checkin")).encode()
    url = tg.session._base_url
    assert url is not None
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(
        b"POST /telegram HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n".encode()
        + HEADER.encode()
        + b": \xff\xfe-not-utf8\r\nConnection: close\r\n\r\n"
        + body
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"403"
    assert tg.inbounds == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[]",
        b'"update"',
        b"\xff\xfe{}",
        b'{"message": {"text": "/checkin"}}',
        b'{"update_id": "12"}',
        b'{"update_id": true}',
        b'{"update_id": 12, "message": "hello"}',
        b'{"update_id": 12, "message": {"chat": 5}}',
        b"[" * 20_000 + b"]" * 20_000,
    ],
    ids=[
        "not-json",
        "empty",
        "array",
        "string",
        "bad-utf8",
        "no-update-id",
        "update-id-string",
        "update-id-bool",
        "message-string",
        "message-broken",
        "deeply-nested",
    ],
)
async def test_malformed_update_is_400(tg: TelegramBot, fake: FakeTelegram, body: bytes) -> None:
    assert await tg.post(body) == 400
    assert tg.inbounds == [] and fake.sent == []


async def test_body_over_64_kib_is_413(tg: TelegramBot) -> None:
    update = message_update(new_user(), "x")
    update["message"]["padding"] = "x" * (64 * 1024)
    assert await tg.post(update) == 413

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length to check up front
        data = json.dumps(update).encode()
        for i in range(0, len(data), 8192):
            yield data[i : i + 8192]

    assert await tg.post(chunked()) == 413  # type: ignore[arg-type]


async def test_redelivered_update_is_handled_once(tg: TelegramBot, fake: FakeTelegram) -> None:
    ann = new_user()
    update = message_update(ann, "/checkin")
    assert await tg.post(update) == 200
    assert await tg.post(update) == 200
    # Ann's updates are handled in order, so once her next one is answered both are done.
    assert await tg.post(message_update(ann, "/help")) == 200
    await fake.wait_sent(2)
    await tg.idle()
    assert [s.text for s in fake.sent] == [FIRST_CHECK_IN, HELP]
    assert [m.text for m in tg.inbounds] == ["/checkin", "/help"]
    assert await tg.balance(ann) == 5


async def test_many_members_at_once_each_redelivered_are_each_credited_once(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    people = [new_user() for _ in range(12)]  # 24 posts, under the 30 sends/s budget
    updates = [message_update(p, "/checkin") for p in people]
    statuses = await asyncio.gather(*(tg.post(u) for u in updates + updates))
    assert statuses == [200] * 24
    await fake.wait_sent(12)
    await tg.idle()
    sent = fake.sent
    assert sorted(s.chat_id for s in sent) == sorted(people)
    assert {s.text for s in sent} == {FIRST_CHECK_IN}
    assert [await tg.balance(p) for p in people] == [5] * 12
    assert len(tg.inbounds) == 12


async def test_start_shows_the_menu_with_action_codes(tg: TelegramBot, fake: FakeTelegram) -> None:
    ann = new_user()
    assert await tg.post(message_update(ann, "/start")) == 200
    [sent] = await fake.wait_sent(1)
    assert sent.text == "Welcome! You are now a member.\n" + HELP + PRIVACY_LINE
    assert sent.buttons == MENU
    assert all(len(data.encode()) <= 64 for row in sent.buttons for _, data in row)


async def test_button_is_answered_before_the_points_reply(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    update = callback_update(ann, "POINTS")
    assert await tg.post(update) == 200
    [sent] = await fake.wait_sent(1)
    assert sent.chat_id == ann
    assert sent.text == NO_POINTS + PRIVACY_LINE
    [answer] = fake.answered
    assert answer["callback_query_id"] == update["callback_query"]["id"]
    methods = fake.methods()
    assert methods.index("answerCallbackQuery") < methods.index("sendMessage")
    [inbound] = tg.inbounds
    assert inbound.menu_key == "POINTS" and inbound.external_id == str(ann)


# -- languages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language_code", "expected"),
    [
        ("en", "Your points: 0"),
        ("zh-hans", "您的积分：0"),
        ("zh-cn", "您的积分：0"),
        ("zh", "您的积分：0"),
        ("zh-hant", "您的積分：0"),
        ("zh-tw", "您的積分：0"),
        ("zh-hk", "您的積分：0"),
        ("fr", "Your points: 0"),
        (None, "Your points: 0"),
    ],
)
async def test_reply_language_follows_telegram_language_code(
    tg: TelegramBot, fake: FakeTelegram, language_code: str | None, expected: str
) -> None:
    assert await tg.post(message_update(new_user(), "/points", language_code=language_code)) == 200
    [sent] = await fake.wait_sent(1)
    assert sent.text.split("\n")[0] == expected


async def test_chosen_language_overrides_the_apps(tg: TelegramBot, fake: FakeTelegram) -> None:
    ann = new_user()
    assert await tg.post(message_update(ann, "/points", language_code="zh-hans")) == 200
    assert await tg.post(message_update(ann, "/lang en", language_code="zh-hans")) == 200
    assert await tg.post(message_update(ann, "/points", language_code="zh-hans")) == 200
    sent = await fake.wait_sent(3)
    assert [s.text.split("\n")[0] for s in sent] == [
        "您的积分：0",
        "Language set to English.",
        "Your points: 0",
    ]


async def test_language_buttons_set_the_language(tg: TelegramBot, fake: FakeTelegram) -> None:
    ann = new_user()
    assert await tg.post(message_update(ann, "/lang")) == 200
    [menu] = await fake.wait_sent(1)
    assert menu.text == (
        "Choose a language: zh_CN 简体中文, zh_TW 繁體中文, en English. For example: /lang en"
        + PRIVACY_LINE
    )
    assert menu.buttons == [
        [("简体中文", "LANG:zh_CN"), ("繁體中文", "LANG:zh_TW")],
        [("English", "LANG:en")],
    ]
    assert await tg.post(callback_update(ann, "LANG:zh_TW")) == 200
    assert await tg.post(message_update(ann, "/points")) == 200
    sent = await fake.wait_sent(3)
    assert [s.text.split("\n")[0] for s in sent[1:]] == ["語言已設定為繁體中文。", "您的積分：0"]


# -- deep links -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "referral"),
    [
        ("/start ref_ABC123", "ref_ABC123"),
        ("/start ref_a-b_C-9", "ref_a-b_C-9"),
        ("/start ref_" + "A" * 60, "ref_" + "A" * 60),  # 64 characters: the most Telegram carries
        ("/start ref_" + "A" * 61, None),
        ("/start ref_" + "A" * 65, None),
        ("/start ref_AB C", None),
        ("/start ref_<script>", None),
        ("/start ref_", None),
        ("/start hello", None),
        ("/start", None),
    ],
    ids=[
        "plain",
        "dash-underscore",
        "64-chars",
        "65-chars",
        "69-chars",
        "space",
        "symbols",
        "empty-code",
        "not-ref",
        "no-payload",
    ],
)
async def test_start_payload_becomes_a_referral_only_when_valid(
    tg: TelegramBot, fake: FakeTelegram, text: str, referral: str | None
) -> None:
    assert await tg.post(message_update(new_user(), text)) == 200
    [sent] = await fake.wait_sent(1)
    [inbound] = tg.inbounds
    assert inbound.referral == referral
    if referral is not None:
        assert inbound.text == "/start"
    # No member has these codes: the payload reached the core, which says so.
    unknown_code = {
        "ref_ABC123": "There is no invite code ABC123. Please check it and try again.\n",
        "ref_a-b_C-9": "There is no invite code ABC9. Please check it and try again.\n",
        "ref_" + "A" * 60: "There is no invite code AAAAAAAAAAAA. Please check it and try again.\n",
    }.get(referral or "", "")
    assert sent.text == "Welcome! You are now a member.\n" + unknown_code + HELP + PRIVACY_LINE


# -- groups -----------------------------------------------------------------------------------


async def test_group_answers_only_commands_addressed_to_it(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    assert await tg.post(message_update(ann, "/checkin")) == 200  # Ann has 5 points
    await fake.wait_sent(1)
    for ignored in ("points", "积分", "hello bot", "/points@otherbot", "/checkin@other_bot"):
        assert await tg.post(message_update(ann, ignored, chat_id=GROUP)) == 200
    assert await tg.post(message_update(ann, f"/points@{BOT_USERNAME}", chat_id=GROUP)) == 200
    sent = await fake.wait_sent(3)
    assert [m.text for m in tg.inbounds] == ["/checkin", f"/points@{BOT_USERNAME}"]
    private, pointer = sent[1:]
    assert private.chat_id == ann
    assert private.text.startswith("Your points: 5\nRecent:\n")
    assert pointer.chat_id == GROUP
    assert pointer.text == SENT_PRIVATELY
    assert pointer.reply_markup is None
    assert [s.chat_id for s in sent].count(GROUP) == 1
    assert "5" not in pointer.text


async def test_group_checkin_does_not_show_the_balance_to_the_group(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    assert await tg.post(message_update(ann, f"/checkin@{BOT_USERNAME}", chat_id=GROUP)) == 200
    await fake.wait_until(lambda: bool(fake.sent_to(GROUP)), what="a message to the group")
    [to_group] = fake.sent_to(GROUP)
    assert "Balance" not in to_group.text and "5" not in to_group.text


async def test_group_command_without_a_mention_is_ours(tg: TelegramBot, fake: FakeTelegram) -> None:
    ann = new_user()
    assert await tg.post(message_update(ann, "/points", chat_id=GROUP)) == 200
    private, pointer = await fake.wait_sent(2)
    assert (private.chat_id, private.text) == (ann, NO_POINTS)
    assert (pointer.chat_id, pointer.text) == (GROUP, SENT_PRIVATELY)


async def test_group_points_for_someone_who_never_opened_a_private_chat(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    fake.refuse(ann)  # 403: the bot cannot start a private chat
    assert await tg.post(message_update(ann, f"/points@{BOT_USERNAME}", chat_id=GROUP)) == 200
    [pointer] = await fake.wait_sent(1)
    assert pointer.chat_id == GROUP
    assert pointer.text == "Please open a private chat with me first, then ask again."
    assert len(fake.calls_of("sendMessage")) == 2


async def test_a_first_contact_in_a_group_gets_the_privacy_line_at_the_private_start(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    fake.refuse(ann)  # she never opened the private chat: Telegram refuses to start one
    assert await tg.post(message_update(ann, f"/help@{BOT_USERNAME}", chat_id=GROUP)) == 200
    [in_group] = await fake.wait_sent(1)
    fake.allow(ann)
    assert await tg.post(message_update(ann, "/start")) == 200
    assert await tg.post(message_update(ann, "/start")) == 200
    started, again = (await fake.wait_sent(3))[1:]

    assert (in_group.chat_id, in_group.text) == (GROUP, "Welcome! You are now a member.\n" + HELP)
    assert (started.chat_id, started.text) == (ann, HELP + PRIVACY_LINE)
    assert (again.chat_id, again.text) == (ann, HELP)


async def test_group_button_answers_privately(tg: TelegramBot, fake: FakeTelegram) -> None:
    ann = new_user()
    assert await tg.post(callback_update(ann, "POINTS", chat_id=GROUP)) == 200
    private, pointer = await fake.wait_sent(2)
    assert (private.chat_id, private.text) == (ann, NO_POINTS)
    assert (pointer.chat_id, pointer.text) == (GROUP, SENT_PRIVATELY)
    assert len(fake.answered) == 1


# -- HTML escaping ------------------------------------------------------------------------------


async def test_member_text_is_escaped_for_html(tg: TelegramBot, fake: FakeTelegram) -> None:
    handle = tg.core.dispatcher.handle

    async def echo(msg: Inbound) -> Reply | None:
        await handle(msg)  # the real core still runs (member created etc.)
        return Reply(f"Hi {msg.display_name}, you said: {msg.text}")

    tg.core.dispatcher.handle = echo  # type: ignore[method-assign]
    ann = new_user()
    update = message_update(ann, "<b>x</b> & <i>y", first_name="<a href='x'>Eve</a> & Co")
    assert await tg.post(update) == 200
    [sent] = await fake.wait_sent(1)
    assert sent.text == (
        "Hi &lt;a href='x'&gt;Eve&lt;/a&gt; &amp; Co, "
        "you said: &lt;b&gt;x&lt;/b&gt; &amp; &lt;i&gt;y"
    )


async def test_unknown_markup_text_gets_the_plain_help(tg: TelegramBot, fake: FakeTelegram) -> None:
    assert await tg.post(message_update(new_user(), "<b>x</b>")) == 200
    [sent] = await fake.wait_sent(1)
    assert sent.text == "Sorry, I didn't understand that.\n\n" + HELP + PRIVACY_LINE
    assert "<b>" not in sent.text and "x</b>" not in sent.text
    assert sent.buttons == MENU


async def test_long_reply_is_cut_to_telegrams_limit_without_breaking_an_entity(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    async def long_reply(msg: Inbound) -> Reply | None:
        return Reply("a" * 4095 + "&" * 10)

    tg.core.dispatcher.handle = long_reply  # type: ignore[method-assign]
    assert await tg.post(message_update(new_user(), "/help")) == 200
    [sent] = await fake.wait_sent(1)  # the fake refuses broken HTML and over-long text
    assert sent.text == "a" * 4095 + "&amp;"


# -- ordering -----------------------------------------------------------------------------------


async def test_one_members_updates_run_in_order_and_members_in_parallel(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    events: list[tuple[str, str]] = []
    gate = asyncio.Event()
    started = {"ann-1": asyncio.Event(), "bob-1": asyncio.Event()}
    handle = tg.core.dispatcher.handle

    async def traced(msg: Inbound) -> Reply | None:
        tag = msg.text.split()[-1]
        events.append(("start", tag))
        if tag in started:
            started[tag].set()
        if tag == "ann-1":
            await gate.wait()
        try:
            return await handle(msg)
        finally:
            events.append(("end", tag))

    tg.core.dispatcher.handle = traced  # type: ignore[method-assign]
    ann, bob = new_user(), new_user()
    ann_1 = asyncio.create_task(tg.post(message_update(ann, "/help ann-1")))
    await asyncio.wait_for(started["ann-1"].wait(), 5)
    ann_2 = asyncio.create_task(tg.post(message_update(ann, "/help ann-2")))
    assert await asyncio.wait_for(tg.post(message_update(bob, "/help bob-1")), 5) == 200
    # Bob is answered while Ann's first update is still running; Ann's second waits for it.
    [to_bob] = fake.sent
    assert to_bob.chat_id == bob
    assert ("start", "ann-2") not in events
    assert not ann_1.done() and not ann_2.done()
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(ann_1, ann_2), 5) == [200, 200]
    sent = fake.sent
    assert [s.chat_id for s in sent] == [bob, ann, ann]
    ann_events = [e for e in events if e[1].startswith("ann")]
    assert ann_events == [
        ("start", "ann-1"),
        ("end", "ann-1"),
        ("start", "ann-2"),
        ("end", "ann-2"),
    ]


# -- outbound failures --------------------------------------------------------------------------


async def test_retry_after_is_waited_out_and_the_message_delivered(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    fake.fail_next(1, 429)
    ann = new_user()
    assert await tg.post(message_update(ann, "/checkin")) == 200
    [sent] = await fake.wait_sent(1, timeout=5)
    assert (sent.chat_id, sent.text) == (ann, FIRST_CHECK_IN)
    first, second = fake.calls_of("sendMessage")
    assert second.at - first.at >= 0.9
    assert await tg.balance(ann) == 5


async def test_forbidden_marks_the_member_unreachable_without_retrying(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    fake.refuse(ann)  # "Forbidden: bot was blocked by the user"
    assert await tg.post(message_update(ann, "/checkin")) == 200
    await fake.wait_for("sendMessage", 1)
    found = await tg.reachable_becomes(ann, False)
    assert found.send_error == "telegram:forbidden"
    assert len(fake.calls_of("sendMessage")) == 1
    assert fake.sent == []
    assert await tg.balance(ann) == 5  # the check-in itself happened


async def test_blocking_and_restarting_the_bot_follow_the_identity(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    assert await tg.post(message_update(ann, "/start")) == 200
    await fake.wait_sent(1)
    assert await tg.post(my_status_update(ann, "member", "kicked")) == 200
    assert (await tg.reachable_becomes(ann, False)).send_error == "telegram:forbidden"
    assert await tg.post(my_status_update(ann, "kicked", "member")) == 200
    assert (await tg.reachable_becomes(ann, True)).send_error is None
    assert len(fake.calls_of("sendMessage")) == 1  # status notices get no answer


async def test_button_whose_answer_fails_still_gets_its_reply(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    fake.fail_next(1, 400, method="answerCallbackQuery")  # "query is too old"
    ann = new_user()
    assert await tg.post(callback_update(ann, "POINTS")) == 200
    [sent] = await fake.wait_sent(1)
    assert (sent.chat_id, sent.text) == (ann, NO_POINTS + PRIVACY_LINE)


# -- flood limit --------------------------------------------------------------------------------


async def test_member_flooding_is_told_once_then_dropped(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    for i in range(22):
        assert await tg.post(message_update(ann, f"/help {i}")) == 200
    assert await tg.post(message_update(new_user(), "/points")) == 200
    sent = await fake.wait_sent(22)
    to_ann = [s.text for s in sent if s.chat_id == ann]
    assert to_ann[:20] == ["Welcome! You are now a member.\n" + HELP + PRIVACY_LINE] + [HELP] * 19
    assert to_ann[20:] == ["You're sending messages too fast. Please wait a minute."]


# -- polling mode -------------------------------------------------------------------------------


async def test_polling_mode_deletes_the_webhook_and_answers_updates(
    start_bot: StartBot, fake: FakeTelegram
) -> None:
    tg = await start_bot(webhook=False)
    await fake.wait_for("getUpdates", 1)
    methods = fake.methods()
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    assert fake.webhooks == []
    async with tg.session.post("/telegram", json={}) as response:
        assert response.status in (404, 405)  # no webhook route without a webhook URL

    ann = new_user()
    update_id = fake.queue_update(message_update(ann, "/checkin"))
    [sent] = await fake.wait_sent(1)
    assert (sent.chat_id, sent.text, sent.parse_mode) == (ann, FIRST_CHECK_IN, "HTML")
    # The next poll confirms the update, so it is not served (or handled) again.
    await fake.wait_for("getUpdates", len(fake.calls_of("getUpdates")) + 1)
    confirmed = [c for c in fake.calls_of("getUpdates") if c.params.get("offset") == update_id + 1]
    assert confirmed
    assert len(tg.inbounds) == 1
    assert await tg.balance(ann) == 5
