"""The outbound WeChat client against the local fake of WeChat's API, over real HTTP."""

from __future__ import annotations

import asyncio

import pytest

from bot.app import Core
from bot.channels.wechat_api import (
    OutboundDisabled,
    SendResult,
    WeChatAPI,
    WeChatAPIError,
    pack_window,
    unpack_window,
)
from bot.channels.wechat_menu import custom_menu
from bot.core.clock import FixedClock
from bot.core.i18n import Translator
from bot.core.messages import Reply
from bot.core.pushes import Target
from bot.core.router import Vocabulary
from bot.http.server import create_app
from bot.settings import ConfigError
from handlers import ROUTERS
from storage.models import OutboxPush
from tests.channels.conftest import (
    Probe,
    ServeFn,
    WeChatServer,
    new_core,
    wechat_settings,
)
from tests.conftest import outbox_idle
from tests.fakes.wechat import FakeWeChat, TokenCall

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
NORMAL = TokenCall("wx1234567890abcdef", force_refresh=False)
FORCED = TokenCall("wx1234567890abcdef", force_refresh=True)


@pytest.fixture
async def api(wechat: WeChatServer) -> WeChatAPI:
    """The client of the running app's WeChat channel (tiny backoff)."""
    return wechat.channel.api


async def written(wechat: WeChatServer, openid: str = OPENID) -> None:
    """The follower writes to the account: that opens their 48-hour, 5-send window."""
    answer = await wechat.text(openid, "积分")
    assert answer.status == 200


# -- the access token --------------------------------------------------------------------------


async def test_token_is_fetched_once_and_shared_by_two_app_instances(
    backend: tuple[str, str | None],
    clock: FixedClock,
    fake_wechat: FakeWeChat,
    wechat_core: Core,
    serve: ServeFn,
) -> None:
    other = await new_core(
        wechat_settings(backend, fake_wechat),
        clock,
        prefix=wechat_core.services.cache.keys.prefix,  # the same Redis keys
        # one process's in-memory cache, shared by both instances
        cache=wechat_core.services.cache if backend[1] is None else None,
    )
    try:
        first, second = await serve(wechat_core), await serve(other)
        await written(first)

        results = await asyncio.gather(
            first.channel.api.send_text(OPENID, "from one"),
            second.channel.api.send_text(OPENID, "from two"),
        )
    finally:
        await other.close()

    assert results == [SendResult(True), SendResult(True)]
    assert fake_wechat.token_calls == [NORMAL]
    assert sorted(fake_wechat.texts_to(OPENID)) == ["from one", "from two"]
    assert first.channel.api is not second.channel.api


async def test_twenty_concurrent_callers_fetch_the_token_once(
    api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    tokens = await asyncio.gather(*(api.access_token() for _ in range(20)))

    assert set(tokens) == {fake_wechat.token}
    assert fake_wechat.token_calls == [NORMAL]


async def test_cached_token_is_reused_by_later_calls(
    api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    first = await api.access_token()

    assert await api.access_token() == first
    assert fake_wechat.token_calls == [NORMAL]


async def test_the_token_is_kept_in_the_process_between_reads_of_the_cache(
    api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    first = await api.access_token()
    await api.cache.delete(api.cache.keys.wechat_token(api.appid))  # as if it ran out there

    assert await api.access_token() == first  # no cache read, no new token for 30 s
    assert fake_wechat.token_calls == [NORMAL]


@pytest.mark.parametrize("lost", ["replaced", "expired"])
async def test_rejected_token_forces_one_refresh_and_the_send_succeeds(
    wechat: WeChatServer, api: WeChatAPI, fake_wechat: FakeWeChat, lost: str
) -> None:
    await written(wechat)
    old = await api.access_token()
    if lost == "replaced":
        fake_wechat.rotate_token()  # 40001 for the old one
    else:
        fake_wechat.expire_token()  # 42001 for the old one

    result = await api.send_text(OPENID, "hello")

    assert result == SendResult(True)
    assert fake_wechat.token_calls == [NORMAL, FORCED]
    assert fake_wechat.texts_to(OPENID) == ["hello"]
    assert await api.access_token() == fake_wechat.token != old


async def test_concurrent_senders_with_a_rejected_token_refresh_once(
    wechat: WeChatServer, api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    for n in range(4):
        await written(wechat, f"{OPENID}{n}")
    await api.access_token()
    fake_wechat.expire_token()

    results = await asyncio.gather(*(api.send_text(f"{OPENID}{n}", "hi") for n in range(4)))

    assert results == [SendResult(True)] * 4
    assert fake_wechat.token_calls == [NORMAL, FORCED]


async def test_wrong_secret_is_an_api_error_and_nothing_is_cached(
    backend: tuple[str, str | None],
    clock: FixedClock,
    fake_wechat: FakeWeChat,
) -> None:
    core = await new_core(wechat_settings(backend, fake_wechat, wechat_secret="wrong"), clock)
    api = WeChatAPI(
        fake_wechat.url,
        "wx1234567890abcdef",
        "wrong",
        core.services.cache,
        clock,
    )
    try:
        with pytest.raises(WeChatAPIError) as refused:
            await api.access_token()
        with pytest.raises(WeChatAPIError):
            await api.access_token()
    finally:
        await api.close()
        await core.close()

    assert refused.value.code == 40125
    assert len(fake_wechat.token_calls) == 2


# -- customer-service messages -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "state", "unreachable"),
    [(45015, "held", False), (45047, "held", False), (43004, "failed", True)],
)
async def test_refusals_are_recorded_and_not_retried(
    wechat: WeChatServer,
    api: WeChatAPI,
    fake_wechat: FakeWeChat,
    probe: Probe,
    code: int,
    state: str,
    unreachable: bool,
) -> None:
    await written(wechat)
    fake_wechat.refuse(OPENID, code, code)

    result = await api.send_text(OPENID, "hello")
    # The same refusal of a push from the outbox is kept on the identity and the push.
    pushes = wechat.core.services.pushes
    queued = await pushes.now(Target("wechat", OPENID), "late-answer", "test:refused", Reply("hi"))
    await outbox_idle(wechat.core)

    assert result == SendResult(False, str(code))
    assert len(fake_wechat.send_attempts) == 2  # one each: no retry storm
    assert fake_wechat.sent == []
    identity = await probe.identity(OPENID)
    assert identity.send_error == f"wechat:{code}"
    assert identity.send_error_at is not None
    assert identity.unreachable is unreachable
    async with wechat.core.services.db.reader() as session:
        push = await session.get(OutboxPush, queued)
    assert push is not None
    assert (push.state, push.last_error) == (state, str(code))


async def test_a_held_push_goes_out_when_the_member_writes_again(
    wechat: WeChatServer, fake_wechat: FakeWeChat, clock: FixedClock
) -> None:
    await written(wechat)
    fake_wechat.refuse(OPENID, 45015)  # once: outside the window
    pushes = wechat.core.services.pushes
    await pushes.now(Target("wechat", OPENID), "late-answer", "test:held", Reply("later"))
    await outbox_idle(wechat.core)
    assert fake_wechat.sent == []

    clock.advance(days=2)
    answer = await wechat.text(OPENID, "积分")
    await outbox_idle(wechat.core)

    assert answer.content is not None and answer.content.startswith("Your points: 0")
    assert fake_wechat.texts_to(OPENID) == ["later"]


async def test_a_refused_request_releases_held_pushes_too(
    wechat: WeChatServer, fake_wechat: FakeWeChat, clock: FixedClock
) -> None:
    await written(wechat)
    fake_wechat.refuse(OPENID, 45015)
    pushes = wechat.core.services.pushes
    await pushes.now(Target("wechat", OPENID), "late-answer", "test:held2", Reply("later"))
    await outbox_idle(wechat.core)

    clock.advance(days=2)
    refused = await wechat.text(OPENID, "/makeup")  # nothing to make up: a refusal
    await outbox_idle(wechat.core)

    assert refused.content is not None
    assert fake_wechat.texts_to(OPENID) == ["later"]


async def test_transient_errors_are_retried_with_backoff(
    wechat: WeChatServer, api: WeChatAPI, fake_wechat: FakeWeChat, probe: Probe
) -> None:
    await written(wechat)
    fake_wechat.fail_next(2, -1)

    result = await api.send_text(OPENID, "hello")

    assert result == SendResult(True)
    assert len(fake_wechat.send_attempts) == 3
    assert fake_wechat.texts_to(OPENID) == ["hello"]
    assert (await probe.identity(OPENID)).send_error is None


async def test_transient_errors_are_retried_a_bounded_number_of_times(
    wechat: WeChatServer, api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    await written(wechat)
    fake_wechat.fail_next(10, -1)

    result = await api.send_text(OPENID, "hello")

    assert result == SendResult(False, "error")
    assert len(fake_wechat.send_attempts) == api.attempts == 3
    assert fake_wechat.sent == []


async def test_a_gateway_error_page_is_retried_like_a_transient_error(
    wechat: WeChatServer, api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    await written(wechat)
    fake_wechat.gateway_errors(1)

    result = await api.send_text(OPENID, "hello")

    assert result == SendResult(True)
    assert fake_wechat.texts_to(OPENID) == ["hello"]


async def test_image_message_is_sent_with_its_media_id(
    wechat: WeChatServer, api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    await written(wechat)

    result = await api.send_image(OPENID, "MEDIA_ID_1")

    assert result == SendResult(True)
    assert fake_wechat.sent == [
        {"touser": OPENID, "msgtype": "image", "image": {"media_id": "MEDIA_ID_1"}}
    ]


# -- the sending window ----------------------------------------------------------------------


def test_a_window_is_one_number_its_sends_taken_by_adding_one() -> None:
    opened = pack_window(1_900_000_000, 5)

    assert unpack_window(opened) == (1_900_000_000, 5, 0)
    assert unpack_window(opened + 6) == (1_900_000_000, 5, 6)
    assert unpack_window(1) == (0, 0, 1)  # INCR of no window: closed since 1970
    # A thousand refused tries later the window is still spent, not open again.
    assert unpack_window(opened + 1005) == (1_900_000_000, 5, 1005)
    assert pack_window(4_000_000_000, 9, 99_999) < 2**53  # exact in Lua's doubles till 2096


async def test_no_call_is_made_outside_the_window(
    wechat: WeChatServer, api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    result = await api.send_text(OPENID, "hello")

    assert result == SendResult(False, "outside-window")
    assert fake_wechat.token_calls == []
    assert fake_wechat.send_attempts == []


async def test_a_message_allows_five_sends_and_the_sixth_makes_no_call(
    wechat: WeChatServer, api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    await written(wechat)

    results = [await api.send_text(OPENID, f"n{n}") for n in range(6)]

    assert results == [SendResult(True)] * 5 + [SendResult(False, "outside-window")]
    assert fake_wechat.texts_to(OPENID) == [f"n{n}" for n in range(5)]
    assert len(fake_wechat.send_attempts) == 5


async def test_a_message_window_lasts_48_hours(
    wechat: WeChatServer, api: WeChatAPI, clock: FixedClock
) -> None:
    await written(wechat)
    clock.advance(hours=47, minutes=59)
    assert await api.send_text(OPENID, "still open") == SendResult(True)

    clock.advance(minutes=2)

    assert await api.send_text(OPENID, "too late") == SendResult(False, "outside-window")


async def test_a_menu_click_allows_three_sends_within_a_minute(
    wechat: WeChatServer, api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    await wechat.click(OPENID, "POINTS")

    results = [await api.send_text(OPENID, f"n{n}") for n in range(4)]

    assert results == [SendResult(True)] * 3 + [SendResult(False, "outside-window")]
    assert len(fake_wechat.send_attempts) == 3


async def test_a_click_window_closes_after_a_minute(
    wechat: WeChatServer, api: WeChatAPI, fake_wechat: FakeWeChat, clock: FixedClock
) -> None:
    await wechat.click(OPENID, "POINTS")
    clock.advance(seconds=61)

    assert await api.send_text(OPENID, "late") == SendResult(False, "outside-window")
    assert fake_wechat.send_attempts == []


async def test_a_click_does_not_shrink_an_open_message_window(
    wechat: WeChatServer, api: WeChatAPI
) -> None:
    await written(wechat)
    await wechat.click(OPENID, "POINTS")

    results = [await api.send_text(OPENID, f"n{n}") for n in range(6)]

    assert results == [SendResult(True)] * 5 + [SendResult(False, "outside-window")]


async def test_follow_opens_the_short_window(wechat: WeChatServer, api: WeChatAPI) -> None:
    await wechat.event(OPENID, "subscribe")

    results = [await api.send_text(OPENID, f"n{n}") for n in range(4)]

    assert results == [SendResult(True)] * 3 + [SendResult(False, "outside-window")]


# -- QR codes and the menu ---------------------------------------------------------------


async def test_permanent_qrcode_with_a_scene_string(
    api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    answer = await api.create_qrcode("ref_ABC", permanent=True)

    assert fake_wechat.qrcodes == [
        {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "ref_ABC"}}}
    ]
    assert answer["ticket"] and answer["url"].startswith("http://weixin.qq.com/q/")
    assert "expire_seconds" not in answer


async def test_temporary_qrcode_with_a_scene_string(
    api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    answer = await api.create_qrcode("ref_ABC", permanent=False, expire_seconds=604800)

    assert fake_wechat.qrcodes == [
        {
            "action_name": "QR_STR_SCENE",
            "action_info": {"scene": {"scene_str": "ref_ABC"}},
            "expire_seconds": 604800,
        }
    ]
    assert answer["expire_seconds"] == 604800
    assert answer["ticket"]


async def test_menu_is_published_with_the_spec_menu_keys(
    api: WeChatAPI, fake_wechat: FakeWeChat
) -> None:
    words = Vocabulary(ROUTERS)
    menu = custom_menu(Translator("zh_CN"), words)

    await api.create_menu(menu)

    assert fake_wechat.menus == [menu]
    buttons = [b for top in menu["button"] for b in [top, *top.get("sub_button", [])]]
    keys = {b["key"] for b in buttons if b.get("type") == "click"}
    assert keys <= set(words.menu_keys)
    assert {"CHECKIN", "POINTS", "TIER", "HELP"} <= keys


# -- outbound off ----------------------------------------------------------------------------


@pytest.mark.parametrize(("appid", "secret"), [("", ""), (None, None), ("wx1", ""), ("", "s")])
async def test_without_appid_or_secret_outbound_is_off(
    backend: tuple[str, str | None],
    clock: FixedClock,
    fake_wechat: FakeWeChat,
    serve: ServeFn,
    appid: str | None,
    secret: str | None,
) -> None:
    # Safe mode needs the AppID (it ends every encrypted message), so plain mode here.
    settings = wechat_settings(
        backend, fake_wechat, wechat_appid=appid, wechat_secret=secret, wechat_aes_key=None
    )
    core = await new_core(settings, clock)
    try:
        wechat = await serve(core)
        answer = await wechat.text(OPENID, "签到")  # passive replies still work
        api = wechat.channel.api
        with pytest.raises(OutboundDisabled, match="WECHAT_APPID"):
            await api.access_token()
        result = await api.send_text(OPENID, "hello")
    finally:
        await core.close()

    assert api.enabled is False
    assert answer.status == 200 and answer.content is not None
    assert answer.content.startswith("Checked in!")
    assert result == SendResult(False, "outside-window")
    assert fake_wechat.token_calls == []


async def test_safe_mode_without_an_appid_stops_start_up(
    backend: tuple[str, str | None], clock: FixedClock, fake_wechat: FakeWeChat
) -> None:
    core = await new_core(wechat_settings(backend, fake_wechat, wechat_appid=""), clock)
    try:
        with pytest.raises(ConfigError, match="MEMBERBOT_WECHAT_APPID is required"):
            create_app(core, background=False)
    finally:
        await core.close()
