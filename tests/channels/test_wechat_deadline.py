"""The 5-second rule: a slow answer is "success" in time, then a customer-service message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from bot.app import Core
from bot.core.context import Context
from bot.core.messages import Inbound, Reply
from tests.channels.conftest import Probe, WeChatServer, payload
from tests.conftest import PRIVACY_LINE, outbox_idle
from tests.fakes.wechat import FakeWeChat

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
# Each test's member is new: this is their first answer, with the privacy line.
CHECKED_IN = "Checked in! +5 points, 1-day streak. Balance: 5.\nTomorrow: +5 points." + PRIVACY_LINE
DEADLINE = 0.6
SLOW = 2.0


@pytest.fixture
def slow_checkin(wechat: WeChatServer, wechat_core: Core) -> None:
    """A short deadline for the channel and a check-in handler that takes a second."""
    wechat.channel.deadline = DEADLINE
    actions = wechat_core.dispatcher.actions
    checkin = actions["checkin"]

    async def slow(msg: Inbound, ctx: Context) -> Reply:
        await asyncio.sleep(SLOW)
        return await checkin(msg, ctx)

    actions["checkin"] = slow


async def eventually(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_slow_reply_is_success_in_time_then_a_customer_service_message(
    wechat: WeChatServer,
    fake_wechat: FakeWeChat,
    probe: Probe,
    slow_checkin: None,
    mode: str,
) -> None:
    started = time.monotonic()
    answer = await wechat.text(OPENID, "签到", mode=mode)
    elapsed = time.monotonic() - started

    assert (answer.status, answer.body) == (200, "success")
    assert DEADLINE <= elapsed < SLOW - 0.1  # answered before the handler finished
    assert fake_wechat.sent == []  # not yet: the handler is still working
    await eventually(lambda: bool(fake_wechat.sent))
    assert fake_wechat.sent == [
        {"touser": OPENID, "msgtype": "text", "text": {"content": CHECKED_IN}}
    ]
    assert await probe.balance(OPENID) == 5


async def test_retries_during_slow_work_answer_success_and_the_text_goes_once(
    wechat: WeChatServer,
    fake_wechat: FakeWeChat,
    probe: Probe,
    slow_checkin: None,
) -> None:
    xml = payload("text", openid=OPENID, content="签到")
    first = asyncio.create_task(wechat.post(xml))
    await asyncio.sleep(0.1)
    early_retry = await wechat.post(xml)  # waits for the first one's answer
    await first
    started = time.monotonic()
    late_retry = await wechat.post(xml)  # the first answered; its work still runs
    late_elapsed = time.monotonic() - started

    assert (first.result().status, first.result().body) == (200, "success")
    assert (early_retry.status, early_retry.body) == (200, "success")
    assert (late_retry.status, late_retry.body) == (200, "success")
    assert late_elapsed < DEADLINE
    await eventually(lambda: bool(fake_wechat.sent))
    after_delivery = await wechat.post(xml)
    await asyncio.sleep(0.1)
    assert after_delivery.body == "success"
    assert fake_wechat.texts_to(OPENID) == [CHECKED_IN]
    assert len(wechat.inbounds) == 1
    assert await probe.balance(OPENID) == 5


async def test_fast_replies_are_still_passive_with_a_short_deadline(
    wechat: WeChatServer, fake_wechat: FakeWeChat, slow_checkin: None
) -> None:
    answer = await wechat.text(OPENID, "积分")

    assert answer.content == (
        "Your points: 0\nNo points yet. Check in every day to earn some!" + PRIVACY_LINE
    )
    assert fake_wechat.sent == []


async def test_a_late_reply_wechat_refuses_waits_for_the_next_message(
    wechat: WeChatServer,
    fake_wechat: FakeWeChat,
    probe: Probe,
    slow_checkin: None,
) -> None:
    fake_wechat.refuse(OPENID, 45015)

    answer = await wechat.text(OPENID, "签到")
    await eventually(lambda: bool(fake_wechat.send_attempts))
    await outbox_idle(wechat.core)

    assert answer.body == "success"
    assert fake_wechat.sent == []
    assert (await probe.identity(OPENID)).send_error == "wechat:45015"
    # The follower writes again: the held answer goes out right after this one's.
    again = await wechat.text(OPENID, "积分")
    await outbox_idle(wechat.core)
    assert again.content is not None and again.content.startswith("Your points: 5")
    assert fake_wechat.texts_to(OPENID) == [CHECKED_IN]
