"""A push held outside WeChat's window goes out when the follower checks in: the check-in's
own statement reads the outbox on PostgreSQL (no cache call for it), the cache's mark is
asked otherwise."""

from __future__ import annotations

import pytest

from bot.core.clock import FixedClock
from bot.core.messages import Reply
from bot.core.pushes import Target
from tests.channels.conftest import WeChatServer
from tests.conftest import outbox_idle
from tests.fakes.wechat import FakeWeChat

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


async def _held(wechat: WeChatServer, fake_wechat: FakeWeChat, key: str) -> None:
    await wechat.text(OPENID, "hi")  # a follower who wrote once: their window opened
    fake_wechat.refuse(OPENID, 45015)  # once: outside the window
    pushes = wechat.core.services.pushes
    await pushes.now(Target("wechat", OPENID), "late-answer", key, Reply("later"))
    await outbox_idle(wechat.core)
    assert fake_wechat.texts_to(OPENID) == []


async def test_a_held_push_goes_out_when_the_follower_checks_in(
    wechat: WeChatServer, fake_wechat: FakeWeChat, clock: FixedClock
) -> None:
    await _held(wechat, fake_wechat, "test:held-checkin")

    clock.advance(days=2)
    answer = await wechat.text(OPENID, "签到")
    await outbox_idle(wechat.core)

    assert answer.content is not None and answer.content.startswith("Checked in! +5 points")
    assert fake_wechat.texts_to(OPENID) == ["later"]
    again = await wechat.text(OPENID, "签到")  # nothing held any more: nothing sent twice
    await outbox_idle(wechat.core)
    assert again.content is not None and again.content.startswith("You have already")
    assert fake_wechat.texts_to(OPENID) == ["later"]


async def test_the_outbox_is_the_truth_when_the_caches_mark_is_gone(
    wechat: WeChatServer, fake_wechat: FakeWeChat, clock: FixedClock
) -> None:
    if wechat.core.services.db.dialect == "sqlite":
        pytest.skip("PostgreSQL: the check-in's statement reads the outbox")
    await _held(wechat, fake_wechat, "test:held-no-mark")
    cache = wechat.core.services.cache
    await cache.delete(cache.keys.outbox_held("wechat", OPENID))  # e.g. Redis lost it

    clock.advance(days=2)
    await wechat.text(OPENID, "签到")
    await outbox_idle(wechat.core)

    assert fake_wechat.texts_to(OPENID) == ["later"]
