"""Invites on WeChat over real HTTP: the parametric QR code, following or scanning with it,
typed codes, and the inviter's reward sent as a customer-service message."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from sqlalchemy import select

from bot.app import Core
from bot.core.clock import FixedClock
from bot.core.messages import Button, Reply
from storage.cache import MemoryCache, RedisCache
from storage.models import Invite
from tests.channels.conftest import (
    Answer,
    Probe,
    ServeFn,
    WeChatServer,
    new_core,
    payload,
    wechat_settings,
)
from tests.channels.test_wechat_webhook import HELP_REPLY, WELCOME
from tests.conftest import PRIVACY_LINE, outbox_idle
from tests.fakes.wechat import FakeWeChat

INVITER = "oInviter0000000000000000000A"
FRIEND = "oFriend00000000000000000000B"
GIFT = "Welcome gift: +20 points for joining through a friend's invitation. Balance: 20."
FRIEND_CHECKED_IN = (
    "A friend you invited checked in for the first time: +50 points and +50 growth for you. "
    "Balance: 50."
)
FIRST_CHECKIN = "Checked in! +5 points, 1-day streak. Balance: 25.\nTomorrow: +5 points."
TOO_LATE = "Invite codes count only within 7 days of joining, and you joined earlier."
ALREADY = "You have already been invited; an invitation counts once."
OWN = "That is your own invite code: share it with friends instead."
TOO_MANY = "Too many wrong codes. Please try again in an hour."
SHOW_QR = "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="
THIRTY_DAYS = 2592000


def invite_text(code: str, qr_url: str | None = None) -> str:
    qr = f"Your invite QR code (friends scan it to follow us): {qr_url}\n" if qr_url else ""
    return (
        f"Your invite code: {code}\n{qr}"
        f"New friends can also send “invite {code}” within 7 days of joining.\n"
        "They get 20 points at once; you get 50 points and 50 growth when they first check in.\n"
        "Invited: 0 · Rewarded: 0 · Waiting for review: 0"
    )


async def inviter_code(wechat: WeChatServer, probe: Probe) -> str:
    """The inviter writes to the account (a member now, with a 48-hour window) and has a code."""
    assert (await wechat.text(INVITER, "积分")).status == 200
    inviter = await probe.member(INVITER)
    assert inviter is not None
    return inviter.invite_code


def shown_code(answer: Answer) -> str:
    """The code on the first line of an invite answer."""
    assert answer.content is not None
    return answer.content.split("\n", 1)[0].removeprefix("Your invite code: ")


async def invite_rows(core: Core) -> list[Invite]:
    async with core.services.db.reader() as session:
        return list((await session.execute(select(Invite).order_by(Invite.id))).scalars())


async def seconds_left(cache: MemoryCache | RedisCache, key: str) -> float:
    if isinstance(cache, RedisCache):
        return await cache.redis.pttl(key) / 1000
    _, deadline = cache._data[key]
    return deadline - time.monotonic()


def follow_with(code: str) -> str:
    """A new follower's subscribe event from a parametric QR code: EventKey qrscene_<scene>."""
    return payload("scan", openid=FRIEND, event="subscribe", event_key=f"qrscene_ref_{code}")


@pytest.fixture
async def passive(
    backend: tuple[str, str | None], clock: FixedClock, fake_wechat: FakeWeChat, serve: ServeFn
) -> AsyncIterator[WeChatServer]:
    """The app without AppID/secret: passive replies only (plain mode; safe mode needs one)."""
    settings = wechat_settings(
        backend, fake_wechat, wechat_appid=None, wechat_secret=None, wechat_aes_key=None
    )
    core = await new_core(settings, clock)
    yield await serve(core)
    await core.close()


# -- following or scanning an invite QR code -----------------------------------------------------


async def test_a_new_follower_from_an_invite_qr_gets_the_welcome_gift(
    wechat: WeChatServer, probe: Probe
) -> None:
    code = await inviter_code(wechat, probe)

    answer = await wechat.post(follow_with(code))

    assert answer.content == WELCOME.replace("\n", f"\n{GIFT}\n", 1)
    assert await probe.balance(FRIEND) == 20
    rows = await invite_rows(wechat.core)
    inviter, friend = await probe.member(INVITER), await probe.member(FRIEND)
    assert inviter is not None and friend is not None
    assert [(r.inviter_id, r.invitee_id, r.via, r.status) for r in rows] == [
        (inviter.id, friend.id, "wechat", "waiting")
    ]


async def test_the_invitees_first_checkin_messages_the_inviter_on_wechat(
    wechat: WeChatServer, probe: Probe, fake_wechat: FakeWeChat
) -> None:
    await wechat.post(follow_with(await inviter_code(wechat, probe)))

    answer = await wechat.text(FRIEND, "签到")
    await outbox_idle(wechat.core)  # the inviter is told in the background

    assert answer.content == FIRST_CHECKIN
    assert fake_wechat.texts_to(INVITER) == [FRIEND_CHECKED_IN]
    assert await probe.balance(INVITER) == 50
    assert [r.status for r in await invite_rows(wechat.core)] == ["rewarded"]


async def test_an_inviter_outside_the_window_is_rewarded_without_a_message(
    wechat: WeChatServer, probe: Probe, fake_wechat: FakeWeChat, clock: FixedClock
) -> None:
    code = await inviter_code(wechat, probe)
    clock.advance(hours=49)  # the inviter's 48-hour window has closed
    await wechat.post(follow_with(code))

    answer = await wechat.text(FRIEND, "签到")
    await outbox_idle(wechat.core)  # the inviter is told in the background

    assert answer.content == FIRST_CHECKIN
    assert fake_wechat.send_attempts == []
    assert await probe.balance(INVITER) == 50


async def test_a_scan_by_a_follower_who_joined_within_seven_days_attributes(
    wechat: WeChatServer, probe: Probe, clock: FixedClock
) -> None:
    code = await inviter_code(wechat, probe)
    await wechat.event(FRIEND, "subscribe")
    clock.advance(days=6, hours=23)

    answer = await wechat.post(
        payload("scan", openid=FRIEND, event="SCAN", event_key=f"ref_{code}")
    )

    assert answer.content == f"{GIFT}\n{HELP_REPLY}"
    assert await probe.balance(FRIEND) == 20
    assert [r.via for r in await invite_rows(wechat.core)] == ["wechat"]


async def test_a_scan_by_a_follower_who_joined_over_seven_days_ago_is_refused(
    wechat: WeChatServer, probe: Probe, clock: FixedClock
) -> None:
    code = await inviter_code(wechat, probe)
    await wechat.event(FRIEND, "subscribe")
    clock.advance(days=7, minutes=1)

    answer = await wechat.post(
        payload("scan", openid=FRIEND, event="SCAN", event_key=f"ref_{code}")
    )

    assert answer.content == f"{TOO_LATE}\n{HELP_REPLY}"
    assert await probe.balance(FRIEND) == 0
    assert await invite_rows(wechat.core) == []


async def test_a_second_scan_counts_once(wechat: WeChatServer, probe: Probe) -> None:
    code = await inviter_code(wechat, probe)
    await wechat.post(follow_with(code))

    answer = await wechat.post(
        payload("scan", openid=FRIEND, event="SCAN", event_key=f"ref_{code}")
    )

    assert answer.content == f"{ALREADY}\n{HELP_REPLY}"
    assert await probe.balance(FRIEND) == 20


async def test_scanning_ones_own_invite_qr_counts_nothing(
    wechat: WeChatServer, probe: Probe
) -> None:
    code = await inviter_code(wechat, probe)

    answer = await wechat.post(
        payload("scan", openid=INVITER, event="SCAN", event_key=f"ref_{code}")
    )

    assert answer.content == f"{OWN}\n{HELP_REPLY}"
    assert await invite_rows(wechat.core) == []


# -- typed codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["邀请码 {lower}", "邀請碼{code}", "invite {code}", "邀请 {code}"]
)
async def test_a_typed_code_attributes_a_new_follower(
    wechat: WeChatServer, probe: Probe, typed: str
) -> None:
    code = await inviter_code(wechat, probe)
    await wechat.event(FRIEND, "subscribe")

    answer = await wechat.text(FRIEND, typed.format(code=code, lower=code.lower()))

    assert answer.content == GIFT
    assert await probe.balance(FRIEND) == 20
    assert [r.via for r in await invite_rows(wechat.core)] == ["code"]


async def test_an_unknown_typed_code_is_named_in_the_answer(
    wechat: WeChatServer, probe: Probe
) -> None:
    await inviter_code(wechat, probe)

    answer = await wechat.text(FRIEND, "邀请码 xxxx")

    assert answer.content == (
        "There is no invite code XXXX. Please check it and try again." + PRIVACY_LINE
    )
    assert await invite_rows(wechat.core) == []


async def test_after_five_wrong_codes_even_the_right_one_is_refused(
    wechat: WeChatServer, probe: Probe
) -> None:
    code = await inviter_code(wechat, probe)
    wrong = [(await wechat.text(FRIEND, f"邀请码 WRONG{n}")).content for n in range(5)]

    answer = await wechat.text(FRIEND, f"邀请码 {code}")

    assert wrong == [
        f"There is no invite code WRONG{n}. Please check it and try again."
        + (PRIVACY_LINE if n == 0 else "")  # the friend's first answer
        for n in range(5)
    ]
    assert answer.content == TOO_MANY
    assert await probe.balance(FRIEND) == 0
    assert await invite_rows(wechat.core) == []


async def test_typing_ones_own_code_counts_nothing(wechat: WeChatServer, probe: Probe) -> None:
    code = await inviter_code(wechat, probe)

    answer = await wechat.text(INVITER, f"邀请码 {code}")

    assert answer.content == OWN
    assert await probe.balance(INVITER) == 0


# -- the invite QR code -------------------------------------------------------------------------


async def test_invite_shows_a_thirty_day_qr_code_with_the_referral_scene(
    wechat: WeChatServer, probe: Probe, fake_wechat: FakeWeChat
) -> None:
    code = await inviter_code(wechat, probe)

    answer = await wechat.text(INVITER, "邀请")

    assert fake_wechat.qrcodes == [
        {
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": f"ref_{code}"}},
            "expire_seconds": THIRTY_DAYS,
        }
    ]
    ticket = fake_wechat.tickets[0]
    assert ticket.endswith("=")  # real tickets need quoting in the URL, and so do the fake's
    assert answer.content == invite_text(code, SHOW_QR + quote(ticket, safe=""))


async def test_a_second_invite_reuses_the_qr_code(
    wechat: WeChatServer, probe: Probe, fake_wechat: FakeWeChat
) -> None:
    await inviter_code(wechat, probe)
    first = await wechat.text(INVITER, "邀请")

    second = await wechat.click(INVITER, "INVITE")

    assert second.content == first.content
    assert len(fake_wechat.qrcodes) == 1


async def test_the_qr_code_is_reused_only_while_it_has_a_week_left(
    wechat: WeChatServer, probe: Probe
) -> None:
    await inviter_code(wechat, probe)
    inviter = await probe.member(INVITER)
    assert inviter is not None

    await wechat.text(INVITER, "邀请")

    cache = wechat.core.services.cache
    assert isinstance(cache, MemoryCache | RedisCache)
    left = await seconds_left(cache, cache.keys.wechat_invite_qr(inviter.id))
    assert THIRTY_DAYS - 7 * 86400 - 60 < left <= THIRTY_DAYS - 7 * 86400


async def test_when_the_qr_api_fails_the_code_is_still_shown_and_retried_next_time(
    wechat: WeChatServer, probe: Probe, fake_wechat: FakeWeChat
) -> None:
    code = await inviter_code(wechat, probe)
    fake_wechat.fail_qrcodes(1)

    failed = await wechat.text(INVITER, "邀请")
    retried = await wechat.text(INVITER, "邀请")

    assert failed.content == invite_text(code)
    assert retried.content == invite_text(code, SHOW_QR + quote(fake_wechat.tickets[0], safe=""))
    assert len(fake_wechat.qrcodes) == 1


async def test_without_appid_and_secret_invite_shows_the_code_only(
    passive: WeChatServer, fake_wechat: FakeWeChat
) -> None:
    answer = await passive.text(INVITER, "邀请")

    code = shown_code(answer)
    assert answer.content == invite_text(code) + PRIVACY_LINE
    assert (fake_wechat.qrcodes, fake_wechat.token_calls) == ([], [])


async def test_without_appid_and_secret_a_friends_checkin_still_rewards_the_inviter(
    passive: WeChatServer, fake_wechat: FakeWeChat
) -> None:
    first = await passive.text(INVITER, "邀请")
    code = shown_code(first)
    await passive.post(follow_with(code))

    answer = await passive.text(FRIEND, "签到")
    await outbox_idle(passive.core)

    assert answer.content == FIRST_CHECKIN
    assert await Probe(passive.core).balance(INVITER) == 50
    assert fake_wechat.send_attempts == []


# -- pushes --------------------------------------------------------------------------------------


async def test_a_pushed_messages_numbered_options_answer_a_typed_number(
    wechat: WeChatServer, probe: Probe, fake_wechat: FakeWeChat
) -> None:
    await wechat.text(INVITER, "帮助")  # its options: [1] is Check in
    inviter = await probe.member(INVITER)
    assert inviter is not None
    core = wechat.core
    async with core.services.db.transaction() as session:
        pushed = await core.services.pushes.to_member(
            session,
            inviter.id,
            "invite-reward",
            "test:options",
            lambda t: Reply("Your points are waiting.", (Button("Points", "POINTS"),)),
        )
    core.services.pushes.wake()
    await outbox_idle(core)

    answer = await wechat.text(INVITER, "1")

    assert pushed is not None
    assert fake_wechat.texts_to(INVITER) == ["Your points are waiting.\n[1] Points"]
    assert wechat.inbounds[-1].menu_key == "POINTS"
    assert answer.content == "Your points: 0\nNo points yet. Check in every day to earn some!"
