"""Flash sales on Telegram end to end, against the fake Bot API: the group announcement with
its claim button, the button answered by a toast at once and the code sent privately through
the outbox, the counter edited, redeliveries claiming once, and the deep link for members the
bot cannot write to."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.admin import flashsales as admin_sales
from bot.jobs.outbox import OutboxSender
from storage import communities, identities, members
from storage.models import FlashClaim, OutboxPush
from tests.channels import test_telegram as base
from tests.channels.test_telegram import (
    GROUP,
    TelegramBot,
    callback_update,
    message_update,
    new_user,
)
from tests.conftest import outbox_idle
from tests.fakes.telegram import BOT_USERNAME, FakeTelegram

fake = base.fake
start_bot = base.start_bot
tg = base.tg
fast_private_chats = base.fast_private_chats
timedelta_retry_after = base.timedelta_retry_after


async def in_coffee(tg: TelegramBot, *users: int, opened: bool = True) -> None:
    """The users in the group; `opened`: each wrote to the bot privately before."""
    services = tg.core.services
    now = services.clock.now()
    async with services.db.transaction() as session:
        found, _ = await communities.upsert(
            session, "coffee", {"names": {"en": "Coffee lovers"}, "telegram_chat_id": GROUP}, now
        )
    for user_id in users:
        member, _ = await members.get_or_create(services.db, "telegram", str(user_id), now)
        async with services.db.transaction() as session:
            await communities.join(session, found.id, member.id, "telegram", now)
            if opened:
                await identities.private_chat_opened(session, "telegram", str(user_id), now)


async def claim_codes(tg: TelegramBot) -> list[str]:
    async with tg.core.services.db.reader() as session:
        return list((await session.execute(select(FlashClaim.claim_code))).scalars())


@pytest.fixture
def outbox(tg: TelegramBot) -> OutboxSender:
    return OutboxSender(tg.core.services, tg.core.services.senders)


async def test_announce_press_claim_privately_and_count(
    tg: TelegramBot, fake: FakeTelegram, outbox: OutboxSender
) -> None:
    ann = new_user()
    await in_coffee(tg, ann)
    sale = await admin_sales.create_sale(
        tg.core.services,
        {"community": "coffee", "title": "Geisha beans", "price": "99.50", "stock": 3,
         "duration_minutes": 30},
    )  # fmt: skip
    await outbox_idle(tg.core)
    [post] = fake.sent
    assert post.chat_id == GROUP
    assert post.text.startswith("⚡ Flash sale in Coffee lovers: Geisha beans\n")
    assert "3 of 3 left" in post.text
    assert post.buttons == [[("Claim", f"fs:{sale['code']}")]]

    press = callback_update(ann, f"fs:{sale['code']}", chat_id=GROUP)
    assert await tg.post(press) == 200
    assert await tg.post(press) == 200  # Telegram redelivers the same update
    await tg.idle()

    [code] = await claim_codes(tg)
    toast = fake.answered[0]
    assert toast["text"] == "You got Geisha beans! Your claim code is in our private chat."
    assert "url" not in toast
    [_, private] = fake.sent
    assert private.chat_id == ann and code in private.text
    # The press is answered by the webhook's response itself (no call of the bot's own waits
    # for anything); the code follows as the claim's push, sent once.
    # The redelivery's response repeats the toast (Telegram redelivers only what it got no
    # response to, so the member sees it once); the claim itself is made once.
    assert [call["method"] for call in tg.webhook_calls] == ["answerCallbackQuery"] * 2
    assert tg.webhook_calls[0] == tg.webhook_calls[1]
    async with tg.core.services.db.reader() as session:
        codes = select(OutboxPush.chat_id, OutboxPush.state).where(
            OutboxPush.kind == "flashsale-code"
        )
        assert (await session.execute(codes)).all() == [(str(ann), "sent")]
    tg.core.services.clock.advance(seconds=5)  # type: ignore[attr-defined]
    await outbox_idle(tg.core)
    [edit] = fake.edited
    assert int(edit["chat_id"]) == GROUP and int(edit["message_id"]) == post.message_id
    assert "2 of 3 left" in edit["text"]


async def test_a_refusal_is_a_toast_never_a_group_post(
    tg: TelegramBot, fake: FakeTelegram, outbox: OutboxSender
) -> None:
    stranger = new_user()
    await in_coffee(tg)
    sale = await admin_sales.create_sale(
        tg.core.services,
        {"community": "coffee", "title": "Geisha beans", "price": "9", "stock": 3,
         "duration_minutes": 30},
    )  # fmt: skip
    await outbox_idle(tg.core)

    assert await tg.post(callback_update(stranger, f"fs:{sale['code']}", chat_id=GROUP)) == 200
    await tg.idle()

    [toast] = fake.answered
    refusal = "Geisha beans is for members of Coffee lovers. Join it first: send “join coffee”."
    assert toast["text"] == refusal and "url" not in toast
    assert [s.chat_id for s in fake.sent] == [GROUP]  # the toast is the whole answer
    assert await claim_codes(tg) == []


async def test_a_member_the_bot_cannot_write_to_gets_the_deep_link(
    tg: TelegramBot, fake: FakeTelegram, outbox: OutboxSender
) -> None:
    bob = new_user()
    await in_coffee(tg, bob)
    services = tg.core.services
    async with services.db.transaction() as session:  # Telegram refused a message to him before
        await identities.mark_unreachable(
            session, "telegram", str(bob), services.clock.now(), "telegram:forbidden"
        )
    sale = await admin_sales.create_sale(
        services,
        {"community": "coffee", "title": "Geisha beans", "price": "9", "stock": 3,
         "duration_minutes": 30},
    )  # fmt: skip
    await outbox_idle(tg.core)
    fake.refuse(bob)

    assert await tg.post(callback_update(bob, f"fs:{sale['code']}", chat_id=GROUP)) == 200
    await tg.idle()
    [answer] = fake.answered
    assert answer["text"] == "You got Geisha beans! Open our private chat to see your claim code."
    assert answer["url"] == f"https://t.me/{BOT_USERNAME}?start=fs_{sale['code']}"
    assert [s.chat_id for s in fake.sent] == [GROUP]
    [code] = await claim_codes(tg)

    fake.allow(bob)
    assert await tg.post(message_update(bob, f"/start fs_{sale['code']}")) == 200
    await fake.wait_sent(2)
    await tg.idle()
    assert await claim_codes(tg) == [code]
    assert fake.sent[-1].chat_id == bob
    assert fake.sent[-1].text == (
        f"Your claim codes for Geisha beans: {code}\nShow one at the shop to buy it for 9.00."
    )


async def test_a_code_telegram_refuses_to_deliver_is_shown_through_the_deep_link(
    tg: TelegramBot, fake: FakeTelegram, outbox: OutboxSender
) -> None:
    """Bob wrote privately once, then blocked the bot: the push of his code fails, which
    marks him unreachable; pressing again (at the limit) opens the private chat with his code."""
    bob = new_user()
    await in_coffee(tg, bob)
    sale = await admin_sales.create_sale(
        tg.core.services,
        {"community": "coffee", "title": "Geisha beans", "price": "9", "stock": 3,
         "duration_minutes": 30},
    )  # fmt: skip
    await outbox_idle(tg.core)
    fake.refuse(bob)

    assert await tg.post(callback_update(bob, f"fs:{sale['code']}", chat_id=GROUP)) == 200
    await tg.idle()
    await tg.reachable_becomes(bob, False)
    assert await tg.post(callback_update(bob, f"fs:{sale['code']}", chat_id=GROUP)) == 200
    await tg.idle()
    [won, again] = fake.answered
    assert won["text"] == "You got Geisha beans! Your claim code is in our private chat."
    assert again["text"] == ("You already have 1 of Geisha beans: that is the limit per member.")
    assert again["url"] == f"https://t.me/{BOT_USERNAME}?start=fs_{sale['code']}"
    assert [s.chat_id for s in fake.sent] == [GROUP]
    [code] = await claim_codes(tg)

    fake.allow(bob)
    assert await tg.post(message_update(bob, f"/start fs_{sale['code']}")) == 200
    await fake.wait_sent(2)
    await tg.idle()
    assert fake.sent[-1].chat_id == bob and code in fake.sent[-1].text


async def test_the_deep_link_claims_on_arrival(
    tg: TelegramBot, fake: FakeTelegram, outbox: OutboxSender
) -> None:
    carl = new_user()
    await in_coffee(tg, carl)
    sale = await admin_sales.create_sale(
        tg.core.services,
        {"community": "coffee", "title": "Geisha beans", "price": "9", "stock": 3,
         "duration_minutes": 30},
    )  # fmt: skip

    assert await tg.post(message_update(carl, f"/start fs_{sale['code']}")) == 200
    await fake.wait_sent(1)
    await tg.idle()
    [code] = await claim_codes(tg)
    assert fake.sent[-1].text == (
        f"You got Geisha beans! Your claim code: {code}\nShow it at the shop to buy it for 9.00.\n"
        "🏅 New badge: First flash-sale win!"
    )


async def test_a_press_redelivered_after_a_crash_answers_the_same_claim(
    tg: TelegramBot, fake: FakeTelegram, outbox: OutboxSender
) -> None:
    """The first handling committed and died before it answered: Telegram sends the update
    again (its work not marked done), and with a limit of 2 it must not claim a second unit."""
    dan = new_user()
    await in_coffee(tg, dan)
    sale = await admin_sales.create_sale(
        tg.core.services,
        {"community": "coffee", "title": "Geisha beans", "price": "9", "stock": 3,
         "per_member_limit": 2, "duration_minutes": 30},
    )  # fmt: skip
    await outbox_idle(tg.core)
    press = callback_update(dan, f"fs:{sale['code']}", chat_id=GROUP)
    again = dict(press, update_id=press["update_id"] + 100_000)  # done-mark lost with the crash

    assert await tg.post(press) == 200
    assert await tg.post(again) == 200
    await tg.idle()

    [code] = await claim_codes(tg)
    assert [a["text"] for a in fake.answered] == [
        "You got Geisha beans! Your claim code is in our private chat."
    ] * 2
    [_, private] = fake.sent  # the code went privately once
    assert private.chat_id == dan and code in private.text


async def test_a_member_who_never_wrote_privately_gets_the_deep_link_until_they_do(
    tg: TelegramBot, fake: FakeTelegram, outbox: OutboxSender
) -> None:
    """Erin joined through the group and never opened a private chat: Telegram would refuse
    the code's push, so her press sends her there by the deep link; once she has written
    there, a press's code follows privately."""
    erin = new_user()
    await in_coffee(tg, erin, opened=False)
    sale = await admin_sales.create_sale(
        tg.core.services,
        {"community": "coffee", "title": "Geisha beans", "price": "9", "stock": 3,
         "per_member_limit": 2, "duration_minutes": 30},
    )  # fmt: skip
    await outbox_idle(tg.core)
    fake.refuse(erin)  # no private chat yet

    assert await tg.post(callback_update(erin, f"fs:{sale['code']}", chat_id=GROUP)) == 200
    await tg.idle()
    await outbox_idle(tg.core)
    [first] = fake.answered
    assert first["text"] == "You got Geisha beans! Open our private chat to see your claim code."
    assert first["url"] == f"https://t.me/{BOT_USERNAME}?start=fs_{sale['code']}"
    assert [s.chat_id for s in fake.sent] == [GROUP]  # no push tried
    [code] = await claim_codes(tg)

    fake.allow(erin)  # she follows the link: her code, not a second unit
    assert await tg.post(message_update(erin, f"/start fs_{sale['code']}")) == 200
    await fake.wait_sent(2)
    await tg.idle()
    assert await claim_codes(tg) == [code]
    assert fake.sent[-1].chat_id == erin
    assert fake.sent[-1].text == (
        f"Your claim codes for Geisha beans: {code}\nShow one at the shop to buy it for 9.00."
    )

    assert await tg.post(callback_update(erin, f"fs:{sale['code']}", chat_id=GROUP)) == 200
    await tg.idle()
    await outbox_idle(tg.core)
    second = fake.answered[-1]
    assert second["text"] == "You got Geisha beans! Your claim code is in our private chat."
    assert "url" not in second
    codes = await claim_codes(tg)
    assert len(codes) == 2 and code in codes
    [second_code] = [c for c in codes if c != code]
    assert fake.sent[-1].chat_id == erin and second_code in fake.sent[-1].text
