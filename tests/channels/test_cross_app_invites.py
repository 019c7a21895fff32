"""Invites across both apps at once: one `memberbot serve` app with WeChat and Telegram (webhook
mode) configured, fed over real HTTP by WeChat's side and by Telegram's, and answering through
the local fakes of both APIs. A person may turn up in both apps, be linked, be attributed from
either, and an inviter in one app may be rewarded (or held for review) for friends of the other.
Both backends."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import Core
from bot.core.clock import FixedClock
from bot.http.server import create_app
from storage import members
from storage.models import Invite, Member
from tests.channels import test_telegram as base
from tests.channels.conftest import (
    Answer,
    Probe,
    WeChatServer,
    new_core,
    payload,
    record_inbounds,
    wechat_settings,
)
from tests.channels.conftest import channel_of as wechat_channel_of
from tests.channels.test_telegram import (
    HELP,
    SECRET,
    WEBHOOK_URL,
    TelegramBot,
    message_update,
    new_user,
)
from tests.channels.test_telegram import channel_of as telegram_channel_of
from tests.channels.test_wechat_webhook import WELCOME as WECHAT_WELCOME
from tests.conftest import ADMIN_TOKEN, PRIVACY_LINE, outbox_idle, sending_outbox
from tests.fakes.telegram import BOT_USERNAME, TOKEN, FakeTelegram
from tests.fakes.wechat import FakeWeChat

# The fake Bot API and the Telegram fixtures, shared with the channel's main tests.
fake = base.fake
fast_private_chats = base.fast_private_chats
timedelta_retry_after = base.timedelta_retry_after

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GIFT = "Welcome gift: +20 points for joining through a friend's invitation. Balance: 20."
ALREADY = "You have already been invited; an invitation counts once."
REWARDED = (
    "A friend you invited checked in for the first time: +50 points and +50 growth for you. "
    "Balance: {balance}."
)
HELD = (
    "A friend you invited checked in for the first time. You have had many invite rewards "
    "today, so this one waits for a quick review."
)
COUNTS = "Invited: {invited} · Rewarded: {rewarded} · Waiting for review: {review}"
LINK_CODE = re.compile(r"^Your link code is (\d{6})\. ")
DEEP_LINK = re.compile(rf"^Your invite link: https://t\.me/{BOT_USERNAME}\?start=ref_(\w+)$", re.M)


# -- the app under test: both chat apps in one server -------------------------------------------


@dataclass
class BothApps:
    """One running app, reached as Telegram reaches it and as WeChat's servers reach it."""

    core: Core
    tg: TelegramBot
    wechat: WeChatServer
    http: ClientSession
    fake: FakeTelegram
    fake_wechat: FakeWeChat

    async def says(self, user_id: int, text: str) -> str:
        """A Telegram private message, and the one answer to it (a sendMessage on the fake)."""
        before = len(self.fake.sent_to(user_id))
        assert await self.tg.post(message_update(user_id, text)) == 200
        return await self.answer_on_telegram(user_id, before, text)

    async def answer_on_telegram(self, user_id: int, before: int, what: str) -> str:
        """The one message sent to `user_id` after their first `before` ones."""
        await self.fake.wait_until(
            lambda: len(self.fake.sent_to(user_id)) > before, what=f"an answer to {what!r}"
        )
        await self.tg.idle()
        [answer] = self.fake.sent_to(user_id)[before:]
        return answer.text

    async def writes(self, openid: str, text: str) -> str:
        """A WeChat text message, and its passive reply."""
        answer = await self.wechat.text(openid, text)
        assert answer.status == 200 and answer.content is not None, answer
        return answer.content

    async def follows_with(self, openid: str, code: str) -> Answer:
        """A new follower's subscribe event from the parametric invite QR code."""
        return await self.wechat.post(
            payload("scan", openid=openid, event="subscribe", event_key=f"qrscene_ref_{code}")
        )

    async def member(self, channel: str, external_id: str | int) -> Member:
        async with self.core.services.db.reader() as session:
            found = await members.find_by_identity(session, channel, str(external_id))
        assert found is not None, f"no member for {channel} {external_id}"
        return found

    async def invites(self) -> list[Invite]:
        async with self.core.services.db.reader() as session:
            return list((await session.execute(select(Invite).order_by(Invite.id))).scalars())

    async def api(self, method: str, path: str) -> tuple[int, Any]:
        async with self.http.request(method, path, headers=AUTH) as response:
            return response.status, await response.json()

    async def settle(self) -> None:
        """Wait for the background pushes (rewards told to inviters) to have gone out."""
        await outbox_idle(self.core)
        await self.tg.idle()


StartApps = Callable[..., Awaitable[BothApps]]


@pytest.fixture
async def start_apps(
    backend: tuple[str, str | None],
    clock: FixedClock,
    fake: FakeTelegram,
    fake_wechat: FakeWeChat,
    fast_private_chats: None,
) -> AsyncIterator[StartApps]:
    """`await start_apps(**settings)`: the app of `memberbot serve` with WeChat (safe-mode
    capable, AppID and secret set) and Telegram (webhook mode) both on, over one core."""
    opened: list[tuple[TestServer, ClientSession, Core]] = []

    async def start(**extra: object) -> BothApps:
        settings = wechat_settings(
            backend,
            fake_wechat,
            telegram_token=TOKEN,
            telegram_api_base=fake.url,
            telegram_webhook_url=WEBHOOK_URL,
            telegram_webhook_secret=SECRET,
            **extra,
        )
        core = await new_core(settings, clock, f"mbtest:{uuid.uuid4().hex}")
        app = sending_outbox(create_app(core, background=False))
        wechat_channel = wechat_channel_of(app)
        wechat_channel.api.backoff = 0.001
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()  # PTB initialises, publishes commands, sets the webhook
        session = ClientSession(base_url=str(server.make_url("/")))
        opened.append((server, session, core))
        inbounds = record_inbounds(core)
        tg = TelegramBot(fake, core, telegram_channel_of(app), session, inbounds)
        wechat = WeChatServer(session, wechat_channel, inbounds)
        assert set(core.services.senders.pushers) == {"telegram", "wechat"}
        return BothApps(core, tg, wechat, session, fake, fake_wechat)

    yield start
    for server, session, core in reversed(opened):
        await session.close()
        await server.close()
        await core.close()


@pytest.fixture
async def apps(start_apps: StartApps) -> BothApps:
    return await start_apps()


async def telegram_invite_code(apps: BothApps, user_id: int) -> str:
    """`/invite` on Telegram; the code in the deep link it shows (checked against storage)."""
    shown = await apps.says(user_id, "/invite")
    found = DEEP_LINK.search(shown)
    assert found is not None, shown
    assert found.group(1) == (await apps.member("telegram", user_id)).invite_code
    return found.group(1)


async def link_accounts(apps: BothApps, openid: str, user_id: int) -> str:
    """`/link` on WeChat, the code sent from Telegram; returns Telegram's answer."""
    shown = await apps.writes(openid, "/link")
    found = LINK_CODE.match(shown)
    assert found is not None, shown
    return await apps.says(user_id, f"/link {found.group(1)}")


# -- 1. a self-invite made of two apps is undone by linking them ---------------------------------


async def test_inviting_oneself_from_the_other_app_is_voided_and_taken_back_on_linking(
    apps: BothApps,
) -> None:
    ann_tg, ann_wx = new_user(), "oAnnSelfInvite00000000000001"
    code = await telegram_invite_code(apps, ann_tg)

    # The same person follows the Official Account with their own invite QR: to WeChat they
    # are a newcomer invited by a Telegram member, and get the welcome gift.
    followed = await apps.follows_with(ann_wx, code)

    assert followed.content == WECHAT_WELCOME.replace("\n", f"\n{GIFT}\n", 1)
    assert await Probe(apps.core).balance(ann_wx) == 20
    inviter, invitee = await apps.member("telegram", ann_tg), await apps.member("wechat", ann_wx)
    [row] = await apps.invites()
    assert (row.inviter_id, row.invitee_id, row.via, row.status) == (
        inviter.id,
        invitee.id,
        "wechat",
        "waiting",
    )

    linked = await link_accounts(apps, ann_wx, ann_tg)

    assert linked == "Linked! Your accounts are now one member: 0 points, tier Bronze."
    [row] = await apps.invites()
    assert row.status == "void"
    merged = await apps.member("wechat", ann_wx)
    assert merged.id == (await apps.member("telegram", ann_tg)).id == inviter.id
    assert await Probe(apps.core).balance(ann_wx) == 0
    status, member = await apps.api("GET", f"/api/members/telegram/{ann_tg}")
    assert status == 200
    assert (member["points"], member["growth"]) == (0, 0)
    assert sorted((i["channel"], i["external_id"]) for i in member["identities"]) == [
        ("telegram", str(ann_tg)),
        ("wechat", ann_wx),
    ]
    status, entries = await apps.api("GET", f"/api/members/wechat/{ann_wx}/ledger")
    assert status == 200
    assert [(e["kind"], e["amount"], e["reason"]) for e in entries] == [
        ("reverse", -20, "invite-void"),
        ("earn", 20, "invite-welcome"),
    ]
    shown = await apps.says(ann_tg, "/invite")
    assert shown.endswith("\n" + COUNTS.format(invited=0, rewarded=0, review=0)), shown
    shown = await apps.writes(ann_wx, "邀请")
    assert shown.endswith("\n" + COUNTS.format(invited=0, rewarded=0, review=0)), shown
    # Checking in now rewards nobody: the void invite is not waiting for a first check-in.
    checked = await apps.says(ann_tg, "/checkin")
    await apps.settle()
    assert checked == "Checked in! +5 points, 1-day streak. Balance: 5.\nTomorrow: +5 points."
    assert await Probe(apps.core).balance(ann_wx) == 5
    assert (await apps.invites())[0].status == "void"


# -- 2. one person attributed from both apps at the same moment ---------------------------------


async def test_a_linked_person_typing_a_code_in_both_apps_at_once_is_attributed_once(
    apps: BothApps, clock: FixedClock
) -> None:
    inviter_tg = new_user()
    code = await telegram_invite_code(apps, inviter_tg)
    inviter = await apps.member("telegram", inviter_tg)
    clock.advance(minutes=1)  # the friends join after the inviter
    pairs = [(f"oLinkedFriend{n:015d}", new_user()) for n in range(4)]
    for openid, user_id in pairs:
        assert await apps.writes(openid, "积分")  # a member on WeChat first...
        linked = await link_accounts(apps, openid, user_id)  # ...then on Telegram too
        assert linked == "Linked! Your accounts are now one member: 0 points, tier Bronze."

    for n, (openid, user_id) in enumerate(pairs):
        before = len(apps.fake.sent_to(user_id))
        on_wechat = apps.wechat.text(openid, f"邀请码 {code}")
        on_telegram = apps.tg.post(message_update(user_id, f"/invite {code}"))
        if n % 2:  # either one may be sent first
            status, answer = await asyncio.gather(on_telegram, on_wechat)
        else:
            answer, status = await asyncio.gather(on_wechat, on_telegram)
        assert status == 200
        assert answer.status == 200
        told = await apps.answer_on_telegram(user_id, before, f"/invite {code}")

        assert {answer.content, told} == {GIFT, ALREADY}, (answer.content, told)
        member = await apps.member("wechat", openid)
        assert member.id == (await apps.member("telegram", user_id)).id
        assert await Probe(apps.core).balance(openid) == 20
        assert await apps.tg.balance(user_id) == 20
        status, entries = await apps.api("GET", f"/api/members/telegram/{user_id}/ledger")
        assert (status, [(e["kind"], e["amount"], e["reason"]) for e in entries]) == (
            200,
            [("earn", 20, "invite-welcome")],
        )

    rows = await apps.invites()
    assert len(rows) == len(pairs)
    friends = [(await apps.member("wechat", openid)).id for openid, _ in pairs]
    assert [(r.inviter_id, r.invitee_id, r.status) for r in rows] == [
        (inviter.id, friend, "waiting") for friend in friends
    ]
    assert [r.via for r in rows] == ["code"] * len(pairs)
    shown = await apps.says(inviter_tg, "/invite")
    assert shown.endswith("\n" + COUNTS.format(invited=4, rewarded=0, review=0)), shown


# -- 3. the daily cap and a moderator's review, for friends from both apps -----------------------


async def test_past_the_daily_cap_a_reward_waits_for_review_and_approval_pays_once(
    start_apps: StartApps, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[invites]\ndaily_review_threshold = 1\n", encoding="utf-8")
    apps = await start_apps(rules_file=rules)
    assert apps.core.services.rules.invites.daily_review_threshold == 1
    ann, bob, carol = new_user(), new_user(), "oCarolFromWeChat000000000001"
    code = await telegram_invite_code(apps, ann)

    bob_joined = await apps.says(bob, f"/start ref_{code}")
    carol_joined = await apps.follows_with(carol, code)

    assert bob_joined == "Welcome! You are now a member.\n" + GIFT + "\n" + HELP + PRIVACY_LINE
    assert carol_joined.content == WECHAT_WELCOME.replace("\n", f"\n{GIFT}\n", 1)
    told_ann = len(apps.fake.sent_to(ann))

    bob_checked = await apps.says(bob, "/checkin")
    await apps.settle()
    carol_checked = (await apps.wechat.text(carol, "签到")).content
    await apps.settle()

    first_checkin = "Checked in! +5 points, 1-day streak. Balance: 25.\nTomorrow: +5 points."
    assert bob_checked == first_checkin
    assert carol_checked == first_checkin
    pushed = apps.fake.sent_to(ann)[told_ann:]
    assert [p.text for p in pushed] == [REWARDED.format(balance=50), HELD]
    assert await apps.tg.balance(ann) == 50
    assert apps.fake_wechat.send_attempts == []  # Ann has no WeChat account to be told on
    shown = await apps.says(ann, "/invite")
    assert shown.endswith("\n" + COUNTS.format(invited=2, rewarded=1, review=1)), shown

    status, held = await apps.api("GET", "/api/invites?status=review")
    inviter = await apps.member("telegram", ann)
    friend = await apps.member("wechat", carol)
    assert status == 200
    assert [(h["inviter_id"], h["invitee_id"], h["via"], h["status"]) for h in held] == [
        (inviter.id, friend.id, "wechat", "review")
    ]
    invite_id = held[0]["id"]
    told_ann = len(apps.fake.sent_to(ann))

    status, approved = await apps.api("POST", f"/api/invites/{invite_id}/approve")
    await apps.settle()

    assert status == 200
    assert (approved["id"], approved["status"]) == (invite_id, "rewarded")
    assert [p.text for p in apps.fake.sent_to(ann)[told_ann:]] == [REWARDED.format(balance=100)]
    assert await apps.tg.balance(ann) == 100
    assert (await apps.member("telegram", ann)).growth == 100

    status, again = await apps.api("POST", f"/api/invites/{invite_id}/approve")
    await apps.settle()

    assert status == 409
    assert again["invite"]["status"] == "rewarded"
    assert await apps.tg.balance(ann) == 100
    assert (await apps.member("telegram", ann)).growth == 100
    assert len(apps.fake.sent_to(ann)) == told_ann + 1  # nothing more told
    status, held = await apps.api("GET", "/api/invites?status=review")
    assert (status, held) == (200, [])
    shown = await apps.says(ann, "/invite")
    assert shown.endswith("\n" + COUNTS.format(invited=2, rewarded=2, review=0)), shown
