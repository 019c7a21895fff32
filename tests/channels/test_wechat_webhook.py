"""POST/GET /wechat over real HTTP, with requests built the way WeChat's servers build them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from bot.app import Core
from bot.core.clock import FixedClock
from bot.core.messages import Inbound, Reply
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
from tests.conftest import HELP_TEXT, PRIVACY_LINE
from tests.fakes.wechat import FakeWeChat

OPTIONS = (
    "[1] Check in  [2] Points  [3] Tier  [4] Invite  [5] Communities  [6] Rewards  "
    "[7] Complain  [8] Link accounts"
)
HELP_REPLY = f"{HELP_TEXT}\n{OPTIONS}"
WELCOME = f"Welcome! You are now a member.\n{HELP_TEXT}{PRIVACY_LINE}\n{OPTIONS}"
SHORT_HELP = f"Sorry, I didn't understand that.\n\n{HELP_REPLY}"
CHECKED_IN = "Checked in! +5 points, 1-day streak. Balance: 5.\nTomorrow: +5 points."
FIRST_CHECK_IN = CHECKED_IN + PRIVACY_LINE  # a new member's first answer
ALREADY = "You have already checked in today (1-day streak). Come back tomorrow for 5 points."
RECEIVED = f"Thanks, I received it.\n\n{HELP_TEXT}"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


@pytest.fixture
def no_flood_limit(wechat_core: Core) -> None:
    """Lift the per-minute limit for tests that send a burst on purpose."""
    rules = wechat_core.services.rules
    wechat_core.services.rules = rules.model_copy(
        update={"limits": rules.limits.model_copy(update={"flood_per_minute": 10_000})}
    )


# -- URL verification ------------------------------------------------------------------------


async def test_url_check_echoes_echostr(wechat: WeChatServer) -> None:
    answer = await wechat.verify("6543217890123456789")

    assert (answer.status, answer.body) == (200, "6543217890123456789")


@pytest.mark.parametrize(
    "override",
    [{"signature": "0" * 40}, {"signature": ""}, {"signature": "签名"}, {"nonce": "tampered"}],
)
async def test_url_check_with_bad_signature_is_403(
    wechat: WeChatServer, override: dict[str, str]
) -> None:
    answer = await wechat.verify("6543217890123456789", **override)

    assert answer.status == 403
    assert "6543217890123456789" not in answer.body


# -- messages and events ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
async def test_checkin_text_gets_the_exact_reply(
    wechat: WeChatServer, probe: Probe, mode: str
) -> None:
    answer = await wechat.text(OPENID, "签到", mode=mode)

    assert answer.status == 200
    assert answer.content == FIRST_CHECK_IN
    assert answer.field("ToUserName") == OPENID
    assert answer.field("FromUserName") == ACCOUNT
    assert answer.field("MsgType") == "text"
    assert (mode != "plain") == answer.body.startswith("<xml><Encrypt>")
    assert await probe.balance(OPENID) == 5


async def test_click_checkin_menu_key_checks_in(wechat: WeChatServer, probe: Probe) -> None:
    answer = await wechat.click(OPENID, "CHECKIN")

    assert answer.content == FIRST_CHECK_IN
    assert wechat.inbounds[-1].menu_key == "CHECKIN"
    assert await probe.balance(OPENID) == 5


async def test_subscribe_gets_welcome_and_help(wechat: WeChatServer) -> None:
    answer = await wechat.event(OPENID, "subscribe")

    assert answer.content == WELCOME
    assert wechat.inbounds[-1].referral is None


async def test_subscribe_from_invite_qr_carries_the_referral(wechat: WeChatServer) -> None:
    xml = payload("scan", openid=OPENID, event="subscribe", event_key="qrscene_ref_ABC")

    answer = await wechat.post(xml)

    no_such_code = "There is no invite code ABC. Please check it and try again."
    assert answer.content == WELCOME.replace("\n", f"\n{no_such_code}\n", 1)
    inbound = wechat.inbounds[-1]
    assert (inbound.external_id, inbound.referral, inbound.menu_key) == (OPENID, "ref_ABC", "HELP")


async def test_scan_by_a_follower_carries_the_referral(wechat: WeChatServer) -> None:
    await wechat.event(OPENID, "subscribe")

    answer = await wechat.post(payload("scan", openid=OPENID, event="SCAN", event_key="ref_ABC"))

    assert (
        answer.content
        == f"There is no invite code ABC. Please check it and try again.\n{HELP_REPLY}"
    )
    assert wechat.inbounds[-1].referral == "ref_ABC"


async def test_unsubscribe_marks_unreachable_and_erases_personal_data(
    wechat: WeChatServer, probe: Probe
) -> None:
    await wechat.text(OPENID, "签到")
    await probe.set_personal(OPENID, "Alice", "05-01")

    answer = await wechat.event(OPENID, "unsubscribe")

    assert (answer.status, answer.body) == (200, "success")
    identity = await probe.identity(OPENID)
    assert identity.unreachable is True
    assert identity.send_error == "wechat:unsubscribed"
    member = await probe.member(OPENID)
    assert member is not None
    assert (member.display_name, member.birthday) == (None, None)
    assert await probe.balance(OPENID) == 5  # the ledger stays for the points owed


async def test_following_again_makes_the_identity_reachable(
    wechat: WeChatServer, probe: Probe
) -> None:
    await wechat.text(OPENID, "签到")
    await wechat.event(OPENID, "unsubscribe")

    answer = await wechat.event(OPENID, "subscribe")

    assert answer.content == HELP_REPLY  # not new any more: no welcome
    identity = await probe.identity(OPENID)
    assert (identity.unreachable, identity.send_error) == (False, None)


@pytest.mark.parametrize("kind", ["image", "voice"])
async def test_media_is_acknowledged_and_its_media_id_kept(wechat: WeChatServer, kind: str) -> None:
    media_id = "MEDIA_ID_3x9Kq2_" + kind

    answer = await wechat.post(payload(kind, openid=OPENID, media_id=media_id))

    assert answer.content == RECEIVED + PRIVACY_LINE
    assert wechat.inbounds[-1].media_id == media_id


async def test_location_gets_the_short_help(wechat: WeChatServer) -> None:
    answer = await wechat.post(payload("location", openid=OPENID))

    assert (
        answer.content
        == f"Sorry, I didn't understand that.\n\n{HELP_TEXT}{PRIVACY_LINE}\n{OPTIONS}"
    )


async def test_other_events_are_answered_success_without_reaching_the_core(
    wechat: WeChatServer,
) -> None:
    answer = await wechat.event(OPENID, "LOCATION")

    assert (answer.status, answer.body) == (200, "success")
    assert wechat.inbounds == []


async def test_numbered_option_maps_to_the_first_buttons_action(
    wechat: WeChatServer, probe: Probe
) -> None:
    assert (await wechat.text(OPENID, "帮助")).content == WELCOME

    answer = await wechat.text(OPENID, "1")

    assert answer.content == CHECKED_IN
    assert wechat.inbounds[-1].menu_key == "CHECKIN"
    assert await probe.balance(OPENID) == 5


@pytest.mark.parametrize("text", ["9", "²", "١"])
async def test_a_number_without_such_an_option_gets_the_short_help(
    wechat: WeChatServer, text: str
) -> None:
    await wechat.text(OPENID, "帮助")

    answer = await wechat.text(OPENID, text)

    assert answer.status == 200
    assert answer.content == SHORT_HELP


# -- exactly once --------------------------------------------------------------------------------


async def test_same_msgid_three_times_at_once_credits_once_and_answers_the_same(
    wechat: WeChatServer, probe: Probe
) -> None:
    xml = payload("text", openid=OPENID, content="签到")

    answers = await asyncio.gather(*(wechat.post(xml) for _ in range(3)))

    assert [a.content for a in answers] == [FIRST_CHECK_IN] * 3
    assert len({a.xml for a in answers}) == 1
    assert len(wechat.inbounds) == 1
    assert await probe.balance(OPENID) == 5


async def test_same_msgid_three_times_at_once_in_safe_mode(
    wechat: WeChatServer, probe: Probe
) -> None:
    xml = payload("text", openid=OPENID, content="签到")

    answers = await asyncio.gather(*(wechat.post(xml, mode="safe") for _ in range(3)))

    assert [a.content for a in answers] == [FIRST_CHECK_IN] * 3
    assert await probe.balance(OPENID) == 5


async def test_thirty_distinct_checkins_at_once_credit_once(
    wechat: WeChatServer, probe: Probe, no_flood_limit: None
) -> None:
    answers = await asyncio.gather(*(wechat.text(OPENID, "签到") for _ in range(30)))

    contents = sorted((a.content or "").removesuffix(PRIVACY_LINE) for a in answers)
    assert contents == sorted([CHECKED_IN] + [ALREADY] * 29)
    # The one that created the member carries the privacy line, whichever checked in.
    assert sum((a.content or "").endswith(PRIVACY_LINE) for a in answers) == 1
    assert await probe.balance(OPENID) == 5


async def test_retry_after_completion_gets_the_stored_reply(
    wechat: WeChatServer, probe: Probe
) -> None:
    xml = payload("text", openid=OPENID, content="签到")
    first = await wechat.post(xml)

    retry = await wechat.post(xml)

    assert retry.xml == first.xml
    assert retry.content == FIRST_CHECK_IN
    assert len(wechat.inbounds) == 1
    assert await probe.balance(OPENID) == 5


async def test_event_retry_is_deduplicated_by_sender_time_and_event(
    wechat: WeChatServer, probe: Probe
) -> None:
    xml = payload("click", openid=OPENID, event_key="CHECKIN", create_time=1700000000)

    first, retry = await wechat.post(xml), await wechat.post(xml)
    later = await wechat.post(payload("click", openid=OPENID, event_key="CHECKIN"))

    assert first.content == retry.content == FIRST_CHECK_IN
    assert later.content == ALREADY
    assert len(wechat.inbounds) == 2


async def test_a_failed_first_delivery_lets_the_retry_handle_it(
    wechat: WeChatServer, probe: Probe
) -> None:
    handle = wechat.core.dispatcher.handle
    failures = [RuntimeError("database went away")]

    async def flaky(msg: Inbound) -> Reply | None:
        if failures:
            raise failures.pop()
        return await handle(msg)

    wechat.core.dispatcher.handle = flaky  # type: ignore[method-assign]
    xml = payload("text", openid=OPENID, content="签到")

    failed = await wechat.post(xml)
    retry = await wechat.post(xml)

    assert failed.status == 500
    assert "database" not in failed.body
    assert retry.content == FIRST_CHECK_IN
    assert await probe.balance(OPENID) == 5


# -- refusals -------------------------------------------------------------------------------


async def test_body_over_64_kib_is_413(wechat: WeChatServer) -> None:
    body = payload("text", openid=OPENID, content="x" * (64 * 1024)).encode()

    answer = await wechat.post_raw(body)

    assert answer.status == 413
    assert wechat.inbounds == []


async def test_chunked_body_over_64_kib_is_413(wechat: WeChatServer) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(80):
            yield b"x" * 1024

    query = wechat.signed_query(openid=OPENID)
    async with wechat.http.post("/wechat", params=query, data=chunks()) as resp:
        assert resp.status == 413
        assert "Traceback" not in await resp.text()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b"<xml><ToUserName>gh</ToUserName>",
        b"<root><MsgType>text</MsgType></root>",
        b"<xml/>",
        b"<xml><MsgType/></xml>",
        b"<xml><MsgType><a>1</a><b>2</b></MsgType></xml>",
        b"<xml><MsgType>text</MsgType><Content>hi</Content></xml>",
        b"<xml><FromUserName>o1</FromUserName><MsgType/><Content>hi</Content></xml>",
        b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType>"
        b"<MsgType>event</MsgType></xml>",
        b"<xml><FromUserName>o1</FromUserName><MsgType>event</MsgType>"
        b"<Event><x>subscribe</x></Event></xml>",
        b"<xml><FromUserName>o1</FromUserName><MsgType>text</MsgType>"
        b"<Content><b>hi</b></Content></xml>",
        "<xml><MsgType>text</MsgType></xml>".encode("utf-16"),
        b"\xff\xfe<xml>",
    ],
)
async def test_malformed_xml_is_400(wechat: WeChatServer, body: bytes) -> None:
    answer = await wechat.post_raw(body)

    assert answer.status == 400
    assert wechat.inbounds == []


@pytest.mark.parametrize(
    "override",
    [
        {"signature": "0" * 40},
        {"signature": ""},
        {"signature": "签名"},
        {"timestamp": "1"},
        {"nonce": "12345"},
    ],
)
async def test_wrong_signature_is_403(wechat: WeChatServer, override: dict[str, str]) -> None:
    answer = await wechat.post(payload("text", openid=OPENID, content="签到"), **override)

    assert answer.status == 403
    assert wechat.inbounds == []


@pytest.mark.parametrize("name", ["billion_laughs", "external_entity"])
async def test_entity_bodies_are_refused_unexpanded(wechat: WeChatServer, name: str) -> None:
    body = payload(name, openid=OPENID).encode()

    answer = await wechat.post_raw(body)

    assert answer.status == 400
    assert "lol" not in answer.body and "root:" not in answer.body
    assert wechat.inbounds == []


@pytest.mark.parametrize("name", ["billion_laughs", "external_entity"])
async def test_entity_bodies_inside_the_ciphertext_are_refused(
    wechat: WeChatServer, name: str
) -> None:
    answer = await wechat.post(payload(name, openid=OPENID), mode="safe", openid=OPENID)

    assert answer.status == 400
    assert wechat.inbounds == []


async def test_encrypted_post_without_aes_key_is_refused_and_logged(
    backend: tuple[str, str | None],
    clock: FixedClock,
    fake_wechat: FakeWeChat,
    serve: ServeFn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = await new_core(wechat_settings(backend, fake_wechat, wechat_aes_key=None), clock)
    try:
        wechat = await serve(core)
        with caplog.at_level(logging.ERROR, logger="memberbot.wechat"):
            answer = await wechat.text(OPENID, "签到", mode="safe")
    finally:
        await core.close()

    assert answer.status == 403
    assert wechat.inbounds == []
    assert any("WECHAT_AES_KEY" in r.getMessage() for r in caplog.records)


async def test_plain_post_still_works_without_aes_key(
    backend: tuple[str, str | None], clock: FixedClock, fake_wechat: FakeWeChat, serve: ServeFn
) -> None:
    core = await new_core(wechat_settings(backend, fake_wechat, wechat_aes_key=None), clock)
    try:
        wechat = await serve(core)
        answer = await wechat.text(OPENID, "签到")
    finally:
        await core.close()

    assert answer.content == FIRST_CHECK_IN


async def test_safe_mode_tampered_ciphertext_is_400(wechat: WeChatServer) -> None:
    sealed = wechat_encrypt(payload("text", openid=OPENID, content="签到"))
    tampered = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]

    answer = await wechat.post(
        payload("text", openid=OPENID, content="x"), mode="safe", sealed=tampered
    )

    assert answer.status == 400
    assert wechat.inbounds == []


@pytest.mark.parametrize(
    "sealed",
    [
        wechat_encrypt(payload("text", openid=OPENID, content="签到"), appid="wx0000000000000000"),
        wechat_encrypt(payload("text", openid=OPENID, content="签到"), key="B" * 43),
        "bm90IGEgYmxvY2s=",
        "not base64!",
        "",
    ],
)
async def test_safe_mode_ciphertext_that_does_not_open_is_400(
    wechat: WeChatServer, sealed: str
) -> None:
    answer = await wechat.post(
        payload("text", openid=OPENID, content="x"), mode="safe", sealed=sealed
    )

    assert answer.status == 400
    assert wechat.inbounds == []


@pytest.mark.parametrize("mode", ["compat", "safe"])
async def test_wrong_msg_signature_is_403(wechat: WeChatServer, mode: str) -> None:
    xml = payload("text", openid=OPENID, content="签到")

    answer = await wechat.post(xml, mode=mode, msg_signature=sha1_signature("forged"))

    assert answer.status == 403
    assert wechat.inbounds == []
