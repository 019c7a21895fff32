"""A complaint with a photo from WeChat: the image is fetched at once (WeChat keeps it 3 days)
and kept under the media folder; the staff chat's post carries the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.admin import tickets
from bot.core.ports import Senders
from bot.jobs.env import JobEnv
from handlers.nudges import TEXTS
from tests.channels.conftest import new_core, payload, wechat_settings
from tests.conftest import outbox_idle
from tests.fakes.wechat import FakeWeChat
from tests.jobs.conftest import FakeApp

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
STAFF_CHAT = "-100777"


@pytest.fixture
async def wechat_core(backend, clock, fake_wechat: FakeWeChat, tmp_path: Path):
    settings = wechat_settings(
        backend, fake_wechat, media_dir=tmp_path, telegram_staff_chat_id=STAFF_CHAT
    )
    core = await new_core(settings, clock)
    yield core
    await core.close()


async def test_guided_complaint_with_a_wechat_image(wechat, wechat_core, fake_wechat, tmp_path):
    fake_wechat.add_media("MEDIA-1", JPEG)

    asked = await wechat.text("oA", "投诉")
    assert asked.content is not None and asked.content.endswith("[5] Other")
    await wechat.text("oA", "2")  # Delivery
    photo_asked = await wechat.text("oA", "包装破了")
    assert photo_asked.content == "A photo helps: send one now, or tap Skip.\n[1] Skip"
    filed = await wechat.post(payload("image", openid="oA", media_id="MEDIA-1"))

    assert filed.content is not None and filed.content.startswith(
        "Your complaint is filed as C-000001."
    )
    assert fake_wechat.media_fetches == ["MEDIA-1"]
    [kept] = (tmp_path / "complaints").iterdir()
    assert kept.read_bytes() == JPEG and kept.suffix == ".jpg"

    staff_chat = FakeApp("telegram")
    senders = Senders()
    senders.add(staff_chat)
    await JobEnv(wechat_core.services, senders, TEXTS).sender.drain()
    [post] = staff_chat.calls
    assert post.chat_id == STAFF_CHAT
    assert post.text.startswith("New ticket C-000001 · Delivery")


async def test_an_image_wechat_no_longer_has_is_refused_and_skip_files(
    wechat, fake_wechat, tmp_path
):
    await wechat.text("oB", "/complain")
    await wechat.text("oB", "1")
    await wechat.text("oB", "坏了")

    refused = await wechat.post(payload("image", openid="oB", media_id="GONE"))
    assert refused.content == (
        "I could not keep that photo (an image of at most 20 MB). Send another, or tap Skip."
        "\n[1] Skip"
    )
    filed = await wechat.text("oB", "1")

    assert filed.content is not None and filed.content.startswith(
        "Your complaint is filed as C-000001."
    )
    assert not (tmp_path / "complaints").exists()


async def test_a_staff_reply_wechat_refuses_waits_for_the_members_next_message(
    wechat, wechat_core, fake_wechat
):
    filed = await wechat.text("oC", "/complain the kettle leaks")
    assert filed.content is not None and filed.content.startswith("Your complaint is filed as")
    await outbox_idle(wechat_core)  # the staff chat has no sender here: its post waits
    fake_wechat.refuse("oC", 45015)  # WeChat says the follower is out of reach for now

    await tickets.reply(wechat_core.services, "C-000001", {"text": "A new one ships today."})
    wechat_core.services.pushes.wake()
    await outbox_idle(wechat_core)
    assert fake_wechat.texts_to("oC") == []

    again = await wechat.text("oC", "积分")  # the member writes again
    await outbox_idle(wechat_core)

    assert again.content is not None and again.content.startswith("Your points:")
    [told] = fake_wechat.texts_to("oC")
    assert "A new one ships today." in told
