"""Updates of the wrong shape from a holder of the webhook secret: refused before the 200
with one WARNING, no exception afterwards, and the bot still answers the next member."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.channels import test_telegram as base
from tests.channels.test_telegram import (
    FIRST_CHECK_IN,
    TelegramBot,
    callback_update,
    chat_member_update,
    join_request_update,
    message_update,
    new_user,
    user,
)
from tests.fakes.telegram import FakeTelegram

# The webhook app and the fake Bot API, shared with the channel's main tests.
fake = base.fake
start_bot = base.start_bot
tg = base.tg
fast_private_chats = base.fast_private_chats
timedelta_retry_after = base.timedelta_retry_after


def _set(path: str, value: object) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(update: dict[str, Any]) -> dict[str, Any]:
        changed = copy.deepcopy(update)
        *parents, last = path.split(".")
        node = changed
        for key in parents:
            node = node[key]
        node[last] = value
        return changed

    return change


MESSAGE = lambda: message_update(new_user(), "/checkin")  # noqa: E731
BUTTON = lambda: callback_update(new_user(), "POINTS")  # noqa: E731

BAD_SHAPES = {
    "user id text": (MESSAGE, _set("message.from.id", "abc")),
    "user id list": (MESSAGE, _set("message.from.id", [1])),
    "user id object": (MESSAGE, _set("message.from.id", {"a": 1})),
    "user id bool": (MESSAGE, _set("message.from.id", True)),
    "user id float": (MESSAGE, _set("message.from.id", 1.5)),
    "user id huge": (MESSAGE, _set("message.from.id", 10**30)),
    "chat id text": (MESSAGE, _set("message.chat.id", "@chan")),
    "chat id list": (MESSAGE, _set("message.chat.id", [5])),
    "no chat": (MESSAGE, _set("message", {"text": "/checkin"})),
    "text number": (MESSAGE, _set("message.text", 5)),
    "text list": (MESSAGE, _set("message.text", ["/checkin"])),
    "language list": (MESSAGE, _set("message.from.language_code", ["en"])),
    "first name object": (MESSAGE, _set("message.from.first_name", {"x": 1})),
    "photo text": (MESSAGE, _set("message.photo", "x")),
    "photo items": (MESSAGE, _set("message.photo", [1, 2])),
    "chat type number": (MESSAGE, _set("message.chat.type", 1)),
    "button user id list": (BUTTON, _set("callback_query.from.id", [1])),
    "button data number": (BUTTON, _set("callback_query.data", 7)),
    "button id number": (BUTTON, _set("callback_query.id", 7)),
    "button chat id text": (BUTTON, _set("callback_query.message.chat.id", "x")),
    "member user id text": (
        lambda: chat_member_update(user(new_user()), "left", "member"),
        _set("chat_member.new_chat_member.user.id", "x"),
    ),
    "member status list": (
        lambda: chat_member_update(user(new_user()), "left", "member"),
        _set("chat_member.new_chat_member.status", ["member"]),
    ),
    "join user_chat_id text": (
        lambda: join_request_update(new_user()),
        _set("chat_join_request.user_chat_id", "x"),
    ),
    "edited message user id list": (
        MESSAGE,
        lambda u: {
            "update_id": u["update_id"],
            "edited_message": _set("from.id", [1])(u["message"]),
        },
    ),
}


@pytest.mark.parametrize("shape", BAD_SHAPES.values(), ids=BAD_SHAPES.keys())
async def test_wrong_shapes_are_refused_with_one_warning(
    tg: TelegramBot,
    fake: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
    shape: tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], dict[str, Any]]],
) -> None:
    make, spoil = shape
    with caplog.at_level(logging.INFO):
        status = await tg.post(spoil(make()))
        await tg.idle()
    ann = new_user()
    assert await tg.post(message_update(ann, "/checkin")) == 200
    [sent] = await fake.wait_sent(1)
    await tg.idle()

    assert status == 400
    assert [i.external_id for i in tg.inbounds] == [str(ann)]
    assert sent.text == FIRST_CHECK_IN
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in warnings] == ["WARNING"]
    assert warnings[0].getMessage().startswith("telegram update dropped")
