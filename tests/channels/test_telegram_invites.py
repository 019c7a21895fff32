"""Invites on Telegram end to end: `/invite` shows the deep link and a share button, a new
member's `/start ref_<code>` is attributed and welcomed with the gift, and the inviter is told
in their own chat when the friend first checks in. Both backends, through the webhook."""

from __future__ import annotations

from urllib.parse import quote

from bot.core.clock import FixedClock
from storage import invites, members
from storage.models import Member
from tests.channels import test_telegram as base
from tests.channels.test_telegram import HELP, TelegramBot, message_update, new_user
from tests.conftest import PRIVACY_LINE
from tests.fakes.telegram import BOT_USERNAME, FakeTelegram

# The webhook app and the fake Bot API, shared with the channel's main tests.
fake = base.fake
start_bot = base.start_bot
tg = base.tg
fast_private_chats = base.fast_private_chats
timedelta_retry_after = base.timedelta_retry_after

WELCOME = "Welcome! You are now a member.\n"
GIFT = "Welcome gift: +20 points for joining through a friend's invitation. Balance: 20.\n"
REWARDED = (
    "A friend you invited checked in for the first time: +50 points and +50 growth for you. "
    "Balance: 50."
)
TOO_LATE = "Invite codes count only within 7 days of joining, and you joined earlier.\n"


async def member_of(tg: TelegramBot, user_id: int) -> Member:
    async with tg.core.services.db.reader() as session:
        found = await members.find_by_identity(session, "telegram", str(user_id))
    assert found is not None, f"no member for Telegram user {user_id}"
    return found


async def says(tg: TelegramBot, fake: FakeTelegram, user_id: int, text: str) -> str:
    """Send a private message and wait for the one answer to it; returns its text."""
    before = len(fake.sent_to(user_id))
    assert await tg.post(message_update(user_id, text)) == 200
    await fake.wait_until(lambda: len(fake.sent_to(user_id)) > before, what=f"an answer to {text}")
    await tg.idle()
    [answer] = fake.sent_to(user_id)[before:]
    return answer.text


async def test_invite_shows_the_deep_link_and_a_share_button(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann = new_user()
    assert await tg.post(message_update(ann, "/invite")) == 200
    [sent] = await fake.wait_sent(1)
    code = (await member_of(tg, ann)).invite_code
    link = f"https://t.me/{BOT_USERNAME}?start=ref_{code}"
    assert sent.text == (
        f"Your invite code: {code}\n"
        f"Your invite link: {link}\n"
        f"New friends can also send “invite {code}” within 7 days of joining.\n"
        "They get 20 points at once; you get 50 points and 50 growth when they first check in.\n"
        "Invited: 0 · Rewarded: 0 · Waiting for review: 0" + PRIVACY_LINE
    )
    text = quote("Join me as a member and get 20 welcome points!", safe="")
    share = f"https://t.me/share/url?url={quote(link, safe='')}&text={text}"
    assert share == (
        f"https://t.me/share/url?url=https%3A%2F%2Ft.me%2F{BOT_USERNAME}%3Fstart%3Dref_{code}"
        "&text=Join%20me%20as%20a%20member%20and%20get%2020%20welcome%20points%21"
    )
    assert sent.reply_markup == {
        "inline_keyboard": [[{"text": "Share my invite link", "url": share}]]
    }


async def test_deep_link_from_the_invite_reply_welcomes_a_new_member_with_the_gift(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann, bob = new_user(), new_user()
    shown = await says(tg, fake, ann, "/invite")
    link = shown.split("\n")[1].removeprefix("Your invite link: ")
    payload = link.split("?start=")[1]

    answer = await says(tg, fake, bob, f"/start {payload}")

    assert answer == WELCOME + GIFT + HELP + PRIVACY_LINE
    assert await tg.balance(bob) == 20
    inviter, invitee = await member_of(tg, ann), await member_of(tg, bob)
    async with tg.core.services.db.reader() as session:
        invite = await invites.of_invitee(session, invitee.id)
    assert invite is not None
    assert (invite.inviter_id, invite.via, invite.status) == (inviter.id, "telegram", "waiting")


async def test_invitees_first_checkin_rewards_the_inviter_in_their_own_chat(
    tg: TelegramBot, fake: FakeTelegram, clock: FixedClock
) -> None:
    ann, bob = new_user(), new_user()
    await says(tg, fake, ann, "/start")
    code = (await member_of(tg, ann)).invite_code
    await says(tg, fake, bob, f"/start ref_{code}")

    answer = await says(tg, fake, bob, "/checkin")

    assert answer == "Checked in! +5 points, 1-day streak. Balance: 25.\nTomorrow: +5 points."
    [told] = fake.sent_to(ann)[1:]
    assert (told.text, told.parse_mode, told.reply_markup) == (REWARDED, "HTML", None)
    assert await tg.balance(ann) == 50
    inviter = await member_of(tg, ann)
    assert inviter.growth == 50
    async with tg.core.services.db.reader() as session:
        invite = await invites.of_invitee(session, (await member_of(tg, bob)).id)
    assert invite is not None and invite.status == "rewarded"
    # A second check-in (next day) rewards nobody again.
    clock.advance(days=1)
    await says(tg, fake, bob, "/checkin")
    assert len(fake.sent_to(ann)) == 2


async def test_inviter_who_blocked_the_bot_keeps_the_reward_and_is_marked_unreachable(
    tg: TelegramBot, fake: FakeTelegram
) -> None:
    ann, bob = new_user(), new_user()
    await says(tg, fake, ann, "/start")
    code = (await member_of(tg, ann)).invite_code
    await says(tg, fake, bob, f"/start ref_{code}")
    fake.refuse(ann)

    await says(tg, fake, bob, "/checkin")

    found = await tg.reachable_becomes(ann, False)
    assert found.send_error == "telegram:forbidden"
    assert [c.params["chat_id"] for c in fake.calls_of("sendMessage")].count(ann) == 2
    assert await tg.balance(ann) == 50


async def test_deep_link_of_a_member_who_joined_over_7_days_ago_is_refused(
    tg: TelegramBot, fake: FakeTelegram, clock: FixedClock
) -> None:
    ann, bob = new_user(), new_user()
    await says(tg, fake, ann, "/start")
    await says(tg, fake, bob, "/start")
    code = (await member_of(tg, ann)).invite_code
    clock.advance(days=7, seconds=1)

    answer = await says(tg, fake, bob, f"/start ref_{code}")

    assert answer == TOO_LATE + HELP
    assert await tg.balance(bob) == 0
    async with tg.core.services.db.reader() as session:
        assert await invites.of_invitee(session, (await member_of(tg, bob)).id) is None


async def test_own_deep_link_is_refused(tg: TelegramBot, fake: FakeTelegram) -> None:
    ann = new_user()
    await says(tg, fake, ann, "/start")
    code = (await member_of(tg, ann)).invite_code

    answer = await says(tg, fake, ann, f"/start ref_{code}")

    assert answer == "That is your own invite code: share it with friends instead.\n" + HELP
    assert await tg.balance(ann) == 0
