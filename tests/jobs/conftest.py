"""Job fixtures: the core's services with a scripted chat app, members, outbox probes."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from bot.app import Core
from bot.core.messages import Reply
from bot.core.ports import Delivery, Senders
from bot.jobs.env import JobEnv
from handlers.nudges import TEXTS
from storage import members
from storage.models import Identity, OutboxPush


@dataclass(frozen=True)
class Call:
    op: str  # send, post, edit
    chat_id: str
    text: str
    message_id: str | None = None


class FakeApp:
    """A chat app's sender (Pusher and GroupPoster) answering from a script, then "sent"."""

    def __init__(self, channel: str = "telegram") -> None:
        self.channel = channel
        self.script: list[Delivery] = []
        self.calls: list[Call] = []
        self._ids = itertools.count(100)

    def answer(self, *deliveries: Delivery) -> None:
        self.script.extend(deliveries)

    def _next(self, call: Call) -> Delivery:
        self.calls.append(call)
        if self.script:
            return self.script.pop(0)
        return Delivery.ok(str(next(self._ids)))

    async def send(self, chat_id: str, reply: Reply) -> Delivery:
        return self._next(Call("send", chat_id, reply.text))

    async def post(self, chat_id: str, reply: Reply) -> Delivery:
        return self._next(Call("post", chat_id, reply.text))

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> Delivery:
        return self._next(Call("edit", chat_id, reply.text, message_id))


@pytest.fixture
def telegram() -> FakeApp:
    return FakeApp("telegram")


@pytest.fixture
def wechat() -> FakeApp:
    return FakeApp("wechat")


@pytest.fixture
def env(core: Core, telegram: FakeApp, wechat: FakeApp) -> JobEnv:
    """Jobs and the sender over the core's services, with Telegram and WeChat scripted."""
    senders = Senders()
    senders.add(telegram)
    senders.add(wechat)
    return JobEnv(core.services, senders, TEXTS)


@pytest.fixture
def new_member(core: Core) -> Callable[..., Awaitable[int]]:
    """`await new_member("telegram", "111")`: a member with that account, joined now."""
    services = core.services

    async def make(channel: str = "telegram", external_id: str | None = None) -> int:
        external = external_id or f"user-{next(_counter)}"
        found, _ = await members.get_or_create(services.db, channel, external, services.clock.now())
        return found.id

    return make


_counter = itertools.count(1)


async def pushes(core: Core) -> list[OutboxPush]:
    """Every outbox row, oldest first."""
    async with core.services.db.sessions() as session:
        return list((await session.execute(select(OutboxPush).order_by(OutboxPush.id))).scalars())


async def identity(core: Core, channel: str, external_id: str) -> Identity:
    async with core.services.db.sessions() as session:
        found = (
            await session.execute(
                select(Identity).where(
                    Identity.channel == channel, Identity.external_id == external_id
                )
            )
        ).scalar_one()
        return found
