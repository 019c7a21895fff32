"""One contract for every app's sender (bot/core/ports.py), run over each implementation: the
terminal's, Telegram's against the fake Bot API and WeChat's against the fake WeChat API (both
real HTTP). The outbox relies on exactly this: a delivered message says so, a person the app
cannot reach is an answer (final, or held until they write), never an exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from bot.app import build_senders
from bot.channels.console import ConsolePusher
from bot.core.clock import FixedClock
from bot.core.messages import Button, Reply
from bot.core.ports import GroupPoster, Pusher
from storage.cache import Keys, MemoryCache
from tests.channels.conftest import APPID, SECRET
from tests.channels.conftest import TOKEN as WECHAT_TOKEN
from tests.conftest import START, make_settings
from tests.fakes.telegram import FORBIDDEN, TOKEN, FakeTelegram
from tests.fakes.wechat import FakeWeChat

REACHABLE, GONE = "4242", "4343"
REPLY = Reply("Your tier changed.", (Button("Points", "POINTS"),))


@dataclass
class App:
    """One implementation, with what the contract needs to know about its app."""

    pusher: Pusher
    shown: Callable[[str], list[str]]  # the texts the person saw in the app
    make_gone: Callable[[str], Awaitable[None]]  # the app can no longer reach the person


async def console_app() -> AsyncIterator[App]:
    pusher = ConsolePusher()
    pusher.present.add(REACHABLE)

    def shown(chat_id: str) -> list[str]:
        return [r.text for r in pusher.inbox.get(chat_id, [])]

    async def gone(chat_id: str) -> None:
        pusher.present.discard(chat_id)  # not in the shell: held for their next line

    yield App(pusher, shown, gone)


async def telegram_app() -> AsyncIterator[App]:
    fake = FakeTelegram()
    await fake.start()
    settings = make_settings("sqlite+aiosqlite://", None, telegram_token=TOKEN)
    settings = settings.model_copy(update={"telegram_api_base": fake.url})
    senders = build_senders(settings, MemoryCache(Keys("contract")), FixedClock(START))
    try:

        def shown(chat_id: str) -> list[str]:
            return [s.text for s in fake.sent_to(int(chat_id))]

        async def gone(chat_id: str) -> None:
            fake.refuse(int(chat_id), FORBIDDEN)  # blocked the bot

        yield App(senders.pusher("telegram"), shown, gone)
    finally:
        await senders.close()
        await fake.close()


async def wechat_app() -> AsyncIterator[App]:
    fake = await FakeWeChat().start()
    cache = MemoryCache(Keys("contract"))
    settings = make_settings(
        "sqlite+aiosqlite://",
        None,
        wechat_token=WECHAT_TOKEN,
        wechat_appid=APPID,
        wechat_secret=SECRET,
        wechat_api_base=fake.url,
    )
    senders = build_senders(settings, cache, FixedClock(START))
    sender = senders.pusher("wechat")
    api = sender.api  # type: ignore[attr-defined]
    api.backoff = 0.001
    for openid in (REACHABLE, GONE):
        await api.open_window(openid, message=True)  # they wrote to the account
    try:

        def shown(chat_id: str) -> list[str]:
            return fake.texts_to(chat_id)

        async def gone(chat_id: str) -> None:
            fake.refuse(chat_id, 43004, 43004)  # unfollowed

        yield App(sender, shown, gone)
    finally:
        await senders.close()
        await fake.close()


IMPLEMENTATIONS = {"console": console_app, "telegram": telegram_app, "wechat": wechat_app}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
async def app(request: pytest.FixtureRequest) -> AsyncIterator[App]:
    async for built in IMPLEMENTATIONS[request.param]():
        yield built


async def test_it_is_a_pusher(app: App) -> None:
    assert isinstance(app.pusher, Pusher)
    assert app.pusher.channel in ("console", "telegram", "wechat")


async def test_a_delivered_message_says_so_and_shows_its_text(app: App) -> None:
    delivery = await app.pusher.send(REACHABLE, REPLY)

    assert (delivery.sent, delivery.final, delivery.hold) == (True, False, False)
    [text] = app.shown(REACHABLE)
    assert text.startswith("Your tier changed.")


async def test_a_person_out_of_reach_is_an_answer_never_an_exception(app: App) -> None:
    await app.make_gone(GONE)

    delivery = await app.pusher.send(GONE, REPLY)

    assert delivery.sent is False
    assert delivery.final or delivery.hold  # retrying now cannot help
    assert delivery.reason
    assert app.shown(GONE) == []


async def test_each_send_is_one_message(app: App) -> None:
    for n in range(3):
        assert (await app.pusher.send(REACHABLE, Reply(f"message {n}"))).sent

    assert [t.split("\n")[0] for t in app.shown(REACHABLE)] == [
        "message 0",
        "message 1",
        "message 2",
    ]


async def test_telegram_posts_to_a_group_and_edits_what_it_posted() -> None:
    async for built in telegram_app():
        poster = built.pusher
        assert isinstance(poster, GroupPoster)
        posted = await poster.post("-1001234", Reply("10 left"))
        assert posted.sent and posted.message_id is not None
        edited = await poster.edit("-1001234", posted.message_id, Reply("9 left"))
        assert edited.sent
