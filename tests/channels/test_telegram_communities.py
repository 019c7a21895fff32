"""Communities on Telegram end to end: `/join` by tier hands out a one-person invite link, the
group's member updates and join requests are recorded or answered by tier, and `/leave` takes
the member out of the group so they can come back. Both backends, through the webhook."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from storage import communities, members
from storage.models import Community, CommunityMember, Member
from tests.channels import test_telegram as base
from tests.channels.test_telegram import (
    GROUP,
    TelegramBot,
    chat_member_update,
    join_request_update,
    message_update,
    new_user,
    restricted,
    user,
)
from tests.conftest import PRIVACY_LINE
from tests.fakes.telegram import BOT_ID, BOT_USERNAME, FakeTelegram

# The webhook app and the fake Bot API, shared with the channel's main tests.
fake = base.fake
start_bot = base.start_bot
tg = base.tg
fast_private_chats = base.fast_private_chats
timedelta_retry_after = base.timedelta_retry_after

OTHER_GROUP = -1009876543210
LOCKED = "VIP lounge is for Gold members and above. You are Bronze: 2000 more growth to Gold."
BOT = {"id": BOT_ID, "is_bot": True, "first_name": "Memberbot", "username": BOT_USERNAME}


@pytest.fixture
async def vip(tg: TelegramBot) -> Community:
    """A Gold-only community whose Telegram group is GROUP."""
    async with tg.core.services.db.transaction() as session:
        found, _ = await communities.upsert(
            session,
            "vip",
            {"names": {"en": "VIP lounge"}, "min_tier": "gold", "telegram_chat_id": GROUP},
            tg.core.services.clock.now(),
        )
    return found


async def member_of(tg: TelegramBot, user_id: int) -> Member | None:
    async with tg.core.services.db.reader() as session:
        return await members.find_by_identity(session, "telegram", str(user_id))


async def gold(tg: TelegramBot, user_id: int) -> Member:
    """Arrange a Telegram member with 2000 growth (Gold), as purchases would have made them."""
    services = tg.core.services
    found, _ = await members.get_or_create(
        services.db, "telegram", str(user_id), services.clock.now()
    )
    async with services.db.transaction() as session:
        await members.add_growth(session, found.id, 2000)
        await members.set_tier(session, found.id, "gold")
    return found


async def status_in(tg: TelegramBot, user_id: int, community: Community) -> str | None:
    """The member's row for the community: "joined", "left", or None (never in)."""
    found = await member_of(tg, user_id)
    if found is None:
        return None
    async with tg.core.services.db.reader() as session:
        return (
            await session.execute(
                select(CommunityMember.status).where(
                    CommunityMember.community_id == community.id,
                    CommunityMember.member_id == found.id,
                )
            )
        ).scalar_one_or_none()


async def joined(tg: TelegramBot, user_id: int) -> set[int]:
    found = await member_of(tg, user_id)
    if found is None:
        return set()
    async with tg.core.services.db.reader() as session:
        return await communities.joined_ids(session, found.id)


async def post(tg: TelegramBot, update: dict[str, Any]) -> None:
    """Deliver one update and wait until the bot has finished with it."""
    assert await tg.post(update) == 200
    await tg.idle()


async def personal_link(tg: TelegramBot, fake: FakeTelegram, user_id: int) -> dict[str, Any]:
    """A Gold member's `/join vip`: the ChatInviteLink the fake made for them."""
    await gold(tg, user_id)
    await post(tg, message_update(user_id, "/join vip"))
    *_, made = fake.links.values()
    return made


# -- /join ------------------------------------------------------------------------------------


async def test_bronze_member_is_told_what_the_community_needs(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann = new_user()
    assert await tg.post(message_update(ann, "/join vip")) == 200
    [sent] = await fake.wait_sent(1)
    assert sent.text == LOCKED + PRIVACY_LINE
    assert fake.calls_of("createChatInviteLink") == []


async def test_gold_member_gets_a_one_person_link_for_24_hours(
    tg: TelegramBot, fake: FakeTelegram, vip: Community, clock: FixedClock
) -> None:
    ann = new_user()
    member = await gold(tg, ann)

    assert await tg.post(message_update(ann, "/join vip")) == 200

    [sent] = await fake.wait_sent(1)
    [call] = fake.calls_of("createChatInviteLink")
    expires = clock.now() + timedelta(hours=24)
    assert call.params == {
        "chat_id": GROUP,
        "member_limit": 1,
        "expire_date": int(expires.timestamp()),
        "name": "memberbot vip",
    }
    [link] = fake.links
    assert link.startswith("https://t.me/+")
    assert sent.text == (
        "Here is your personal link to VIP lounge. It lets one person in and expires in "
        f"24 hours: {link}"
    )
    assert sent.reply_markup == {"inline_keyboard": [[{"text": "Open VIP lounge", "url": link}]]}
    async with tg.core.services.db.reader() as session:
        kept = await communities.link_owner(session, link)
    assert kept is not None
    assert (kept.community_id, kept.member_id, kept.revoked) == (vip.id, member.id, False)
    assert kept.expires_at == expires
    # In the group only once they really join it.
    assert await joined(tg, ann) == set()


async def test_link_refused_by_telegram_is_an_apology_and_nothing_kept(
    tg: TelegramBot, fake: FakeTelegram, vip: Community, caplog: pytest.LogCaptureFixture
) -> None:
    ann = new_user()
    await gold(tg, ann)
    fake.fail_next(1, 400, method="createChatInviteLink")  # e.g. the bot is not a group admin

    with caplog.at_level(logging.WARNING, logger="memberbot.telegram"):
        await post(tg, message_update(ann, "/join vip"))

    [sent] = fake.sent
    assert sent.text == "Sorry, something went wrong on our side. Please try again."
    assert sent.reply_markup is None
    assert len(fake.calls_of("createChatInviteLink")) == 1
    assert fake.links == {} and await joined(tg, ann) == set()
    [logged] = [r.getMessage() for r in caplog.records if r.name == "memberbot.telegram"]
    assert logged == f"telegram group link refused chat={GROUP} error=BadRequest Bad Request"


# -- the group's member updates -----------------------------------------------------------------


async def test_joining_with_ones_own_link_records_the_membership(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann = new_user()
    link = await personal_link(tg, fake, ann)

    await post(tg, chat_member_update(user(ann), "left", "member", invite_link=link))

    assert await joined(tg, ann) == {vip.id}
    assert fake.calls_of("revokeChatInviteLink") == []


async def test_someone_elses_link_is_revoked_and_the_newcomer_not_recorded(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann, eve = new_user(), new_user()
    link = await personal_link(tg, fake, ann)

    await post(
        tg, chat_member_update(user(eve, first_name="Eve"), "left", "member", invite_link=link)
    )

    [revoke] = fake.calls_of("revokeChatInviteLink")
    assert revoke.params == {"chat_id": GROUP, "invite_link": link["invite_link"]}
    assert fake.links[link["invite_link"]]["is_revoked"] is True
    assert await status_in(tg, eve, vip) is None
    assert await joined(tg, ann) == set()
    async with tg.core.services.db.reader() as session:
        kept = await communities.link_owner(session, link["invite_link"])
    assert kept is not None and kept.revoked is True
    # Eve is below the tier: a forwarded link does not get her round the gate.
    ban, unban = fake.calls_of("banChatMember"), fake.calls_of("unbanChatMember")
    assert [c.params for c in ban] == [{"chat_id": GROUP, "user_id": eve}]
    assert [c.params for c in unban] == [{"chat_id": GROUP, "user_id": eve, "only_if_banned": True}]


async def test_someone_elses_link_used_by_a_member_of_the_tier_records_them_as_themself(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann, eve = new_user(), new_user()
    link = await personal_link(tg, fake, ann)
    await gold(tg, eve)

    await post(
        tg, chat_member_update(user(eve, first_name="Eve"), "left", "member", invite_link=link)
    )

    assert len(fake.calls_of("revokeChatInviteLink")) == 1
    assert fake.calls_of("banChatMember") == []
    assert await status_in(tg, eve, vip) == "joined"
    assert await joined(tg, ann) == set()


async def test_a_refusal_asked_for_in_a_group_is_answered_privately(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann = new_user()

    assert await tg.post(message_update(ann, f"/join@{BOT_USERNAME} vip", chat_id=GROUP)) == 200

    private, pointer = await fake.wait_sent(2)
    assert (private.chat_id, private.text) == (ann, LOCKED)
    assert (pointer.chat_id, pointer.text) == (GROUP, base.SENT_PRIVATELY)


@pytest.mark.parametrize("gone", ["left", "kicked"])
async def test_leaving_the_group_marks_the_membership_left(
    tg: TelegramBot, fake: FakeTelegram, vip: Community, gone: str
) -> None:
    ann = new_user()
    await post(tg, chat_member_update(user(ann), "left", "member"))
    assert await status_in(tg, ann, vip) == "joined"
    by = BOT if gone == "kicked" else None

    await post(tg, chat_member_update(user(ann), "member", gone, by=by))

    assert await status_in(tg, ann, vip) == "left"
    assert await joined(tg, ann) == set()
    assert fake.sent == []  # group changes get no message


async def test_a_restricted_member_is_in_the_group_until_no_longer_a_member(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann = user(new_user())
    muted, gone = restricted(ann, is_member=True), restricted(ann, is_member=False)

    await post(tg, chat_member_update(ann, "left", muted))  # joined, muted on arrival
    assert await status_in(tg, ann["id"], vip) == "joined"
    await post(tg, chat_member_update(ann, muted, "member"))  # unmuted: no change
    await post(tg, chat_member_update(ann, "member", muted))
    assert await status_in(tg, ann["id"], vip) == "joined"

    await post(tg, chat_member_update(ann, muted, gone))

    assert await status_in(tg, ann["id"], vip) == "left"


async def test_changes_in_other_groups_and_of_bots_are_ignored(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann = new_user()
    await post(tg, chat_member_update(user(ann), "left", "member", chat_id=OTHER_GROUP))
    await post(tg, chat_member_update({**BOT, "id": 999}, "left", "member"))
    await post(tg, join_request_update(ann, chat_id=OTHER_GROUP))

    assert await member_of(tg, ann) is None
    async with tg.core.services.db.reader() as session:
        assert await communities.member_count(session, vip.id) == 0
    assert [m for m in fake.methods() if "Chat" in m] == []


# -- join requests ------------------------------------------------------------------------------


async def test_join_request_from_a_gold_member_is_approved_and_recorded(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann = new_user()
    await gold(tg, ann)

    await post(tg, join_request_update(ann))

    [approve] = fake.calls_of("approveChatJoinRequest")
    assert approve.params == {"chat_id": GROUP, "user_id": ann}
    assert fake.calls_of("declineChatJoinRequest") == [] and fake.sent == []
    assert await joined(tg, ann) == {vip.id}
    # Telegram then reports the join itself: still one membership.
    await post(tg, chat_member_update(user(ann), "left", "member", by=BOT, via_join_request=True))
    async with tg.core.services.db.reader() as session:
        assert await communities.member_count(session, vip.id) == 1


async def test_join_request_below_the_tier_is_declined_and_explained_privately(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann = new_user()

    await post(tg, join_request_update(ann))

    [decline] = fake.calls_of("declineChatJoinRequest")
    assert decline.params == {"chat_id": GROUP, "user_id": ann}
    assert fake.calls_of("approveChatJoinRequest") == []
    [sent] = fake.sent
    assert (sent.chat_id, sent.text) == (ann, LOCKED)
    assert await status_in(tg, ann, vip) is None


async def test_join_request_explanation_is_in_the_applicants_language(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann = new_user()

    await post(tg, join_request_update(ann, language_code="zh-hans"))

    [sent] = fake.sent
    assert (sent.chat_id, sent.text) == (
        ann,
        "VIP lounge 仅限黄金及以上会员加入。您目前是青铜，再获得 2000 成长值即可升到黄金。",
    )


async def test_redelivered_join_request_is_handled_once(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann = new_user()
    await gold(tg, ann)
    update = join_request_update(ann)

    await post(tg, update)
    await post(tg, update)

    assert len(fake.calls_of("approveChatJoinRequest")) == 1
    assert await joined(tg, ann) == {vip.id}


# -- /leave -------------------------------------------------------------------------------------


async def test_leave_takes_the_member_out_of_the_group_free_to_come_back(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann = new_user()
    await post(tg, chat_member_update(user(ann), "left", "member"))

    await post(tg, message_update(ann, "/leave vip"))

    [sent] = fake.sent
    assert sent.text == "You left VIP lounge. Send “join vip” to come back any time."
    assert [m for m in fake.methods() if m.endswith("ChatMember")] == [
        "banChatMember",
        "unbanChatMember",
    ]
    [ban] = fake.calls_of("banChatMember")
    [unban] = fake.calls_of("unbanChatMember")
    assert ban.params == {"chat_id": GROUP, "user_id": ann}
    assert unban.params == {"chat_id": GROUP, "user_id": ann, "only_if_banned": True}
    assert await status_in(tg, ann, vip) == "left"


async def test_leave_is_answered_even_when_telegram_refuses_the_removal(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann = new_user()
    await post(tg, chat_member_update(user(ann), "left", "member"))
    fake.fail_next(1, 400, method="banChatMember")

    await post(tg, message_update(ann, "/leave vip"))

    [sent] = fake.sent
    assert sent.text == "You left VIP lounge. Send “join vip” to come back any time."
    assert fake.calls_of("unbanChatMember") == []
    assert await status_in(tg, ann, vip) == "left"


async def test_join_asked_in_a_group_sends_the_personal_link_privately(
    tg: TelegramBot, fake: FakeTelegram, vip: Community
) -> None:
    ann = new_user()
    await gold(tg, ann)

    assert await tg.post(message_update(ann, f"/join@{BOT_USERNAME} vip", chat_id=GROUP)) == 200

    private, pointer = await fake.wait_sent(2)
    [link] = fake.links
    assert private.chat_id == ann
    assert private.text.endswith(f"24 hours: {link}")
    assert pointer.chat_id == GROUP
    assert pointer.text == base.SENT_PRIVATELY
    assert link not in pointer.text
