"""A process that dies (kill -9) while handling a WeChat message: WeChat's retry, reaching
another process, is processed once the dead owner's short lease lapses, and only once."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.app import Core
from bot.core.clock import FixedClock
from bot.core.deliveries import Deliveries, Waited
from bot.core.messages import Inbound, Reply
from storage.cache import RedisCache
from tests.channels.conftest import (
    Probe,
    ServeFn,
    new_core,
    payload,
    wechat_settings,
)
from tests.conftest import PRIVACY_LINE
from tests.fakes.wechat import FakeWeChat

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
# Each test's member is new: this is their first answer, with the privacy line.
CHECKED_IN = "Checked in! +5 points, 1-day streak. Balance: 5.\nTomorrow: +5 points." + PRIVACY_LINE


class Severable:
    """A process's view of the shared cache; `cut()` is its death: nothing more reaches the
    cache from it (no renewal, no release), as after kill -9."""

    def __init__(self, cache: Any) -> None:
        self._cache = cache
        self._cut = False

    def cut(self) -> None:
        self._cut = True

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._cache, name)
        if not self._cut or name in ("keys", "close"):
            return real

        def dead(*_args: Any, **_kwargs: Any) -> Any:
            raise ConnectionError("this process is dead")

        return dead


async def test_a_retry_after_the_owner_died_is_processed_once(
    backend: tuple[str, str | None],
    clock: FixedClock,
    fake_wechat: FakeWeChat,
    wechat_core: Core,
    serve: ServeFn,
    probe: Probe,
) -> None:
    survivor_cache = wechat_core.services.cache
    shared = survivor_cache if backend[1] is None else RedisCache(backend[1], survivor_cache.keys)
    view = Severable(shared)
    dying = await new_core(wechat_settings(backend, fake_wechat), clock, cache=view)  # type: ignore[arg-type]
    stuck = asyncio.Event()

    async def hang(_msg: Inbound) -> Reply | None:
        stuck.set()
        await asyncio.Event().wait()
        return None

    try:
        doomed, survivor = await serve(dying), await serve(wechat_core)
        for side in (doomed, survivor):
            side.channel.deliveries.lease = 0.5
        dying.dispatcher.handle = hang  # type: ignore[method-assign]
        xml = payload("text", openid=OPENID, content="签到")
        first = asyncio.create_task(doomed.post(xml))
        await asyncio.wait_for(stuck.wait(), 10)
        view.cut()
        first.cancel()

        retry = await survivor.post(xml)
        again = await survivor.post(xml)
    finally:
        await dying.close()

    assert retry.content == again.content == CHECKED_IN
    assert [i.text for i in survivor.inbounds] == ["签到"]
    assert await probe.balance(OPENID) == 5


async def test_a_living_owner_keeps_its_lease_past_the_lease_time(cache: Any) -> None:
    deliveries = Deliveries(cache, "wechat", lease=0.3)
    async with deliveries.take("msg:1") as mine:
        await asyncio.sleep(1.0)  # three lease times of work
        async with deliveries.take("msg:1") as other:
            taken_meanwhile = other
        waited = await deliveries.wait("msg:1", 0.05)
    async with deliveries.take("msg:1") as after:
        taken_after = after

    assert mine is True
    assert taken_meanwhile is False
    assert waited == Waited(None, free=False)
    assert taken_after is True  # given back at the end of the work
