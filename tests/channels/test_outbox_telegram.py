"""The outbox against the fake Bot API over HTTP: Telegram 429 and 403 as the sender sees them."""

from __future__ import annotations

from bot.core.clock import FixedClock
from bot.core.messages import Reply
from bot.core.pushes import Target
from storage.models import OutboxPush
from tests.channels import test_telegram as base
from tests.channels.test_telegram import TelegramBot, new_user
from tests.conftest import outbox_idle
from tests.fakes.telegram import FORBIDDEN, TOO_MANY, FakeTelegram

fake = base.fake
start_bot = base.start_bot
tg = base.tg
fast_private_chats = base.fast_private_chats
timedelta_retry_after = base.timedelta_retry_after


async def push(tg: TelegramBot, user_id: int, key: str, text: str = "Your tier changed.") -> int:
    queued = await tg.core.services.pushes.now(
        Target("telegram", str(user_id)), "tier-change", key, Reply(text)
    )
    assert queued is not None
    return queued


async def row(tg: TelegramBot, push_id: int) -> OutboxPush:
    async with tg.core.services.db.reader() as session:
        found = await session.get(OutboxPush, push_id)
    assert found is not None
    return found


async def test_a_429_is_waited_out_then_the_push_goes_once(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    user = new_user()
    fake.fail_next(1, TOO_MANY)  # retry_after 1

    queued = await push(tg, user, "k429")
    await outbox_idle(tg.core)

    first, second = fake.calls_of("sendMessage")
    assert second.at - first.at >= 1.0  # Telegram's retry_after was honoured
    assert [s.text for s in fake.sent_to(user)] == ["Your tier changed."]
    sent = await row(tg, queued)
    assert (sent.state, sent.attempts, sent.last_error) == ("sent", 1, None)


async def test_a_403_fails_once_and_marks_the_account_unreachable(
    tg: TelegramBot, fake: FakeTelegram, clock: FixedClock
) -> None:
    user = new_user()
    fake.refuse(user, FORBIDDEN)

    queued = await push(tg, user, "k403")
    await outbox_idle(tg.core)
    clock.advance(days=1)
    await outbox_idle(tg.core)

    failed = await row(tg, queued)
    assert (failed.state, failed.attempts) == ("failed", 1)
    assert failed.last_error is not None
    assert len(fake.calls_of("sendMessage")) == 1  # no retry storm
    account = await tg.identity(user)
    assert account is None or account.unreachable is True


async def test_the_same_cause_twice_pushes_once(tg: TelegramBot, fake: FakeTelegram) -> None:
    user = new_user()
    first = await push(tg, user, "same-cause")
    again = await tg.core.services.pushes.now(
        Target("telegram", str(user)), "tier-change", "same-cause", Reply("Your tier changed.")
    )
    await outbox_idle(tg.core)

    assert again is None
    assert (await row(tg, first)).state == "sent"
    assert [s.text for s in fake.sent_to(user)] == ["Your tier changed."]
