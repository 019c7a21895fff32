"""The complaints desk on Telegram against the fake Bot API: the ticket posted in the staff
group with Take / Resolve, staff working it there, the member's reply and score buttons."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.jobs.env import JobEnv
from handlers.nudges import TEXTS
from storage import members, roles
from tests.channels import test_telegram as base
from tests.channels.test_telegram import (
    TelegramBot,
    callback_update,
    message_update,
    new_user,
)
from tests.conftest import START
from tests.fakes.telegram import BOT_ID, FakeTelegram
from tests.fakes.telegram import visible_text as visible

fake = base.fake
start_bot = base.start_bot
fast_private_chats = base.fast_private_chats
timedelta_retry_after = base.timedelta_retry_after

STAFF_GROUP = -1005550001


JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@pytest.fixture
async def tg(start_bot, tmp_path) -> TelegramBot:
    return await start_bot(telegram_staff_chat_id=str(STAFF_GROUP), media_dir=tmp_path)


async def staff_member(tg: TelegramBot, user_id: int) -> None:
    services = tg.core.services
    found, _ = await members.get_or_create(
        services.db, "telegram", str(user_id), START, display_name="Sam"
    )
    async with services.db.transaction() as session:
        await roles.grant(session, found.id, roles.STAFF, 0, START)


async def deliver(tg: TelegramBot) -> None:
    await JobEnv(tg.core.services, tg.core.services.senders, TEXTS).sender.drain()


async def test_a_ticket_worked_in_the_staff_group(tg: TelegramBot, fake: FakeTelegram) -> None:
    ann, sam, eve = new_user(), new_user(), new_user()
    await staff_member(tg, sam)

    await tg.post(message_update(ann, "/complain the kettle leaks"))
    await tg.idle()
    assert visible(fake.sent_to(ann)[-1].text).startswith("Your complaint is filed as C-000001.")
    await deliver(tg)
    [post] = fake.sent_to(STAFF_GROUP)
    assert visible(post.text).startswith("New ticket C-000001 · Other · due 2026-03-11 10:00")
    assert post.buttons == [[("Take", "TAKE:C-000001"), ("Resolve", "RESOLVE:C-000001")]]

    await tg.post(callback_update(eve, "TAKE:C-000001", chat_id=STAFF_GROUP))  # not staff
    await tg.post(callback_update(sam, "TAKE:C-000001", chat_id=STAFF_GROUP))
    await tg.idle()
    assert visible(fake.sent_to(eve)[-1].text) == "Only support staff can do that."
    # The two presses are answered in either order.
    assert "C-000001 is yours." in [visible(s.text) for s in fake.sent_to(STAFF_GROUP)]

    await tg.post(
        message_update(sam, "/reply C-000001 A new one ships today.", chat_id=STAFF_GROUP)
    )
    await tg.idle()
    assert visible(fake.sent_to(STAFF_GROUP)[-1].text) == "Sent to the member of C-000001."
    await deliver(tg)
    assert visible(fake.sent_to(ann)[-1].text) == (
        "Reply on your ticket C-000001:\nA new one ships today."
    )

    await tg.post(message_update(sam, "/resolve C-000001", chat_id=STAFF_GROUP))
    await tg.idle()
    await deliver(tg)
    asked = fake.sent_to(ann)[-1]
    assert visible(asked.text).startswith("Your ticket C-000001 is resolved.")
    scores = [label for row in asked.buttons for label in row]
    assert scores == [
        *((str(n), f"RATE:C-000001:{n}") for n in range(1, 6)),
        ("Not solved", "REOPEN:C-000001"),
    ]

    await tg.post(callback_update(ann, "RATE:C-000001:2"))
    await tg.idle()
    assert visible(fake.sent_to(ann)[-1].text) == "Thank you! You rated C-000001 2 of 5."
    await deliver(tg)
    assert visible(fake.sent_to(STAFF_GROUP)[-1].text) == "C-000001 was rated 2 of 5."


def reply_to(user_id: int, text: str, post_id: int, chat_id: int) -> dict[str, Any]:
    """A message in a group answering the bot's message `post_id` (Telegram's reply)."""
    update = message_update(user_id, text, chat_id=chat_id)
    update["message"]["reply_to_message"] = {
        "message_id": post_id,
        "date": int(time.time()),
        "chat": update["message"]["chat"],
        "from": {"id": BOT_ID, "is_bot": True, "first_name": "Memberbot"},
        "text": "New ticket",
    }
    return update


async def test_replying_to_a_tickets_post_answers_the_member(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann, sam, eve = new_user(), new_user(), new_user()
    await staff_member(tg, sam)
    await tg.post(message_update(ann, "/complain the kettle leaks"))
    await tg.idle()
    await deliver(tg)
    [post] = fake.sent_to(STAFF_GROUP)

    await tg.post(reply_to(sam, "Sorry! A new one ships today.", post.message_id, STAFF_GROUP))
    await tg.post(reply_to(eve, "me too", post.message_id, STAFF_GROUP))  # not staff
    await tg.post(reply_to(eve, "nice", post.message_id, -100999))  # another group: ignored
    await tg.idle()

    in_group = sorted(visible(s.text) for s in fake.sent_to(STAFF_GROUP)[1:])
    assert in_group == [
        "I sent you the answer in a private chat.",
        "Sent to the member of C-000001.",
    ]
    assert visible(fake.sent_to(eve)[-1].text) == "Only support staff can do that."
    assert fake.sent_to(-100999) == []
    await deliver(tg)
    assert visible(fake.sent_to(ann)[-1].text) == (
        "Reply on your ticket C-000001:\nSorry! A new one ships today."
    )


def photo_update(user_id: int, file_ids: list[str]) -> dict[str, Any]:
    """A photo in the private chat, in the sizes Telegram sends (the largest last)."""
    update = message_update(user_id, "")
    message = update["message"]
    del message["text"]
    message["photo"] = [
        {"file_id": f, "file_unique_id": f"u-{f}", "width": 90 * (i + 1), "height": 90 * (i + 1)}
        for i, f in enumerate(file_ids)
    ]
    return update


async def test_guided_complaint_with_a_photo_reaches_the_staff_group(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    await tg.post(message_update(ann, "/complain"))
    await tg.idle()
    categories = [label for row in fake.sent_to(ann)[-1].buttons for label in row]
    assert categories[1] == ("Delivery", "COMPLAIN_CAT:delivery")
    await tg.post(callback_update(ann, "COMPLAIN_CAT:delivery"))
    await tg.idle()
    await tg.post(message_update(ann, "The box was crushed"))
    await tg.idle()
    asked = fake.sent_to(ann)[-1]
    assert visible(asked.text) == "A photo helps: send one now, or tap Skip."
    assert asked.buttons == [[("Skip", "COMPLAIN_PHOTO:skip")]]

    fake.add_file("large-id", JPEG)
    await tg.post(photo_update(ann, ["small-id", "large-id"]))
    await tg.idle()
    assert fake.downloads == ["large-id"]  # the largest size, fetched at once

    assert visible(fake.sent_to(ann)[-1].text).startswith("Your complaint is filed as C-000001.")
    await deliver(tg)
    [post] = fake.sent_to(STAFF_GROUP)
    assert post.photo == "large-id"
    assert visible(post.text).startswith("New ticket C-000001 · Delivery")
    assert visible(post.text).endswith("The box was crushed")


async def test_guided_complaint_skipping_the_photo(tg: TelegramBot, fake: FakeTelegram) -> None:
    ann = new_user()
    await tg.post(callback_update(ann, "COMPLAIN_CAT:product"))
    await tg.idle()
    await tg.post(message_update(ann, "It broke"))
    await tg.idle()
    await tg.post(callback_update(ann, "COMPLAIN_PHOTO:skip"))
    await tg.idle()

    assert visible(fake.sent_to(ann)[-1].text).startswith("Your complaint is filed as C-000001.")
    await deliver(tg)
    [post] = fake.sent_to(STAFF_GROUP)
    assert post.photo is None
    assert visible(post.text).endswith("It broke")


async def test_a_digit_is_a_complaints_text_when_no_score_is_awaited(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    await tg.post(callback_update(ann, "COMPLAIN_CAT:product"))
    await tg.idle()
    await tg.post(message_update(ann, "3"))
    await tg.idle()

    assert visible(fake.sent_to(ann)[-1].text) == "A photo helps: send one now, or tap Skip."
