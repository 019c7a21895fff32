"""Hostile WeChat posts: odd XML shapes, stale and reused signatures, modes, menu taps at once.

Each answer is a 4xx or WeChat's polite "success", never a 500, and nothing odd is stored.
"""

from __future__ import annotations

import secrets
import time

import pytest

from bot.app import Core
from bot.core.clock import FixedClock
from bot.settings import ConfigError
from tests.channels.conftest import (
    ACCOUNT,
    Probe,
    ServeFn,
    WeChatServer,
    new_core,
    payload,
    sha1_signature,
    wechat_encrypt,
    wechat_settings,
)
from tests.conftest import PRIVACY_LINE
from tests.fakes.wechat import FakeWeChat

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
# Each test's member is new: this is their first answer, with the privacy line.
CHECKED_IN = "Checked in! +5 points, 1-day streak. Balance: 5.\nTomorrow: +5 points." + PRIVACY_LINE


def xml(*fields: str) -> bytes:
    return ("<xml>" + "".join(fields) + "</xml>").encode()


SENDER = f"<FromUserName>{OPENID}</FromUserName>"
TEXT = "<MsgType>text</MsgType>"

# -- XML shapes that once answered 500 -------------------------------------------------------

REFUSED_SHAPES = {
    "unknown encoding": b'<?xml version="1.0" encoding="x-no-such-codec"?>'
    + xml(SENDER, TEXT, "<Content>hi</Content>"),
    "attribute on MsgType": xml(SENDER, '<MsgType a="1">text</MsgType>', "<Content>hi</Content>"),
    "attribute on Event": xml(SENDER, "<MsgType>event</MsgType>", '<Event a="1">CLICK</Event>'),
    "attribute on EventKey": xml(
        SENDER, "<MsgType>event</MsgType>", "<Event>CLICK</Event>", '<EventKey a="1">K</EventKey>'
    ),
    "attribute on Content": xml(SENDER, TEXT, '<Content a="1">hi</Content>'),
    "attribute on FromUserName": xml(
        f'<FromUserName a="1">{OPENID}</FromUserName>', TEXT, "<Content>hi</Content>"
    ),
    "openid over 128 characters": xml(
        f"<FromUserName>{'o' * 129}</FromUserName>", TEXT, "<Content>签到</Content>"
    ),
    "control character in openid": xml(
        "<FromUserName>o\u00851</FromUserName>", TEXT, "<Content>hi</Content>"
    ),
}


@pytest.mark.parametrize("body", REFUSED_SHAPES.values(), ids=REFUSED_SHAPES.keys())
async def test_odd_shapes_are_400_and_store_nothing(
    wechat: WeChatServer, probe: Probe, body: bytes
) -> None:
    answer = await wechat.post_raw(body)

    assert answer.status == 400
    assert wechat.inbounds == []
    assert await probe.member(OPENID) is None
    assert await probe.member("o" * 129) is None


@pytest.mark.parametrize("body", REFUSED_SHAPES.values(), ids=REFUSED_SHAPES.keys())
async def test_odd_shapes_inside_the_ciphertext_are_400(wechat: WeChatServer, body: bytes) -> None:
    answer = await wechat.post("<xml/>", mode="safe", openid=OPENID, sealed=_seal(body))

    assert answer.status == 400
    assert wechat.inbounds == []


def _seal(body: bytes) -> str:
    # The test cipher takes text; a declaration naming another encoding stays as written.
    return wechat_encrypt(body.decode("utf-8"))


@pytest.mark.parametrize("event", ["<Event></Event>", "<Event/>", "<Event>  </Event>", ""])
async def test_event_without_a_name_is_answered_success(wechat: WeChatServer, event: str) -> None:
    answer = await wechat.post_raw(xml(SENDER, "<MsgType>event</MsgType>", event))

    assert (answer.status, answer.body) == (200, "success")
    assert wechat.inbounds == []


async def test_openid_at_the_limit_is_a_member(wechat: WeChatServer, probe: Probe) -> None:
    openid = "o" * 128

    answer = await wechat.text(openid, "签到")

    assert answer.content == CHECKED_IN
    assert await probe.balance(openid) == 5


# -- menu taps within one second ----------------------------------------------------------------


async def test_menu_taps_in_the_same_second_are_three_deliveries(wechat: WeChatServer) -> None:
    same_second = int(time.time())
    answers = [
        await wechat.click(OPENID, key, create_time=same_second)
        for key in ("CHECKIN", "POINTS", "TIER")
    ]

    assert [i.menu_key for i in wechat.inbounds] == ["CHECKIN", "POINTS", "TIER"]
    assert answers[0].content == CHECKED_IN
    assert len({a.content for a in answers}) == 3


# -- signatures: window, reuse, modes -------------------------------------------------------------


def _query(timestamp: str, nonce: str | None = None) -> dict[str, str]:
    nonce = nonce or str(secrets.randbelow(10**10))
    return {
        "signature": sha1_signature("memberbot-wechat-token", timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
    }


def _body(content: str = "签到") -> bytes:
    return payload("text", openid=OPENID, content=content).encode()


@pytest.mark.parametrize(
    "timestamp",
    [-400, -3600, -86400 * 365, +400, +86400, "0", "", "-5", "1e9", "９" * 10],
)
async def test_stale_future_or_empty_timestamps_are_403(
    wechat: WeChatServer, probe: Probe, timestamp: int | str
) -> None:
    if isinstance(timestamp, int):  # seconds from now, taken when the test runs
        timestamp = str(int(time.time()) + timestamp)
    answer = await wechat.post_raw(_body(), _query(timestamp))
    checked = await wechat.verify("echo", **_query(timestamp))

    assert answer.status == 403
    assert checked.status == 403
    assert wechat.inbounds == []
    assert await probe.balance(OPENID) == 0


async def test_a_timestamp_inside_the_window_is_accepted(wechat: WeChatServer) -> None:
    answer = await wechat.post_raw(_body(), _query(str(int(time.time()) - 200)))

    assert answer.content == CHECKED_IN


async def test_the_window_comes_from_the_rules(wechat: WeChatServer) -> None:
    rules = wechat.core.services.rules
    wechat.core.services.rules = rules.model_copy(
        update={"wechat": rules.wechat.model_copy(update={"signature_window_seconds": 30})}
    )

    answer = await wechat.post_raw(_body(), _query(str(int(time.time()) - 200)))

    assert answer.status == 403


async def test_a_signature_serves_its_retry_but_no_other_body(
    wechat: WeChatServer, probe: Probe
) -> None:
    query = _query(str(int(time.time())))
    body = _body()

    first = await wechat.post_raw(body, query)
    retry = await wechat.post_raw(body, query)
    other = await wechat.post_raw(_body("积分"), query)

    assert first.content == retry.content == CHECKED_IN
    assert other.status == 403
    assert len(wechat.inbounds) == 1
    assert await probe.balance(OPENID) == 5


async def test_a_signature_reused_for_another_body_in_safe_mode_is_403(
    wechat: WeChatServer,
) -> None:
    first = await wechat.post(payload("text", openid=OPENID, content="签到"), mode="safe")
    assert first.content == CHECKED_IN
    # The same query (signature, timestamp, nonce) on a new ciphertext: refused.
    sealed = wechat_encrypt(payload("text", openid=OPENID, content="积分"))
    query = _query(str(int(time.time())), nonce="424242")
    query.update(
        encrypt_type="aes",
        msg_signature=sha1_signature(
            "memberbot-wechat-token", query["timestamp"], query["nonce"], sealed
        ),
    )
    body = f"<xml><ToUserName>{ACCOUNT}</ToUserName><Encrypt>{sealed}</Encrypt></xml>"
    await wechat.post_raw(b"<xml/>", query, encrypted=True)

    answer = await wechat.post_raw(body.encode(), query, encrypted=True)

    assert answer.status == 403


async def _serve_with(
    backend: tuple[str, str | None],
    clock: FixedClock,
    fake: FakeWeChat,
    serve: ServeFn,
    **settings: object,
) -> tuple[Core, WeChatServer]:
    core = await new_core(wechat_settings(backend, fake, **settings), clock)
    return core, await serve(core)


async def test_safe_mode_refuses_plain_posts(
    backend: tuple[str, str | None], clock: FixedClock, fake_wechat: FakeWeChat, serve: ServeFn
) -> None:
    core, wechat = await _serve_with(backend, clock, fake_wechat, serve, wechat_mode="safe")
    try:
        plain = await wechat.text(OPENID, "签到")
        safe = await wechat.text(OPENID, "签到", mode="safe")
    finally:
        await core.close()

    assert plain.status == 403
    assert safe.content == CHECKED_IN


async def test_plain_mode_refuses_encrypted_posts(
    backend: tuple[str, str | None], clock: FixedClock, fake_wechat: FakeWeChat, serve: ServeFn
) -> None:
    core, wechat = await _serve_with(backend, clock, fake_wechat, serve, wechat_mode="plain")
    try:
        safe = await wechat.text(OPENID, "签到", mode="safe")
        plain = await wechat.text(OPENID, "签到")
    finally:
        await core.close()

    assert safe.status == 403
    assert plain.content == CHECKED_IN


async def test_compatible_mode_is_the_default_with_an_aes_key(wechat: WeChatServer) -> None:
    assert wechat.channel.mode == "compatible"
    assert (await wechat.text(OPENID, "签到")).content == CHECKED_IN
    assert (await wechat.text(OPENID, "签到", mode="compat")).status == 200


async def test_safe_mode_without_an_aes_key_is_a_config_error(
    backend: tuple[str, str | None], clock: FixedClock, fake_wechat: FakeWeChat, serve: ServeFn
) -> None:
    settings = wechat_settings(backend, fake_wechat, wechat_aes_key=None, wechat_mode="safe")
    core = await new_core(settings, clock)
    try:
        with pytest.raises(ConfigError, match="MEMBERBOT_WECHAT_MODE"):
            await serve(core)
    finally:
        await core.close()
