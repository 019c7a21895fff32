"""What a community's group chat reports: someone joined, left, or asked to join.

The decisions (`group_member_joined`, `group_member_left`, `join_request`) are plain functions;
the event actions below run them for the app's events and carry them out through the app's
`GroupAccess` (revoke a misused link, remove someone, answer a join request).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context, Services
from bot.core.events import AskedToJoin, JoinedGroup, LeftGroup
from bot.core.i18n import Translator, pick_locale
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from handlers.communities import locked_text, qualifies
from storage import communities, members
from storage.models import Community
from storage.outbox import Target

router = Router("groups")
log = logging.getLogger("memberbot.communities")


class GroupJoin(Enum):
    NOT_OURS = "not_ours"  # a chat that is no community's group
    RECORDED = "recorded"
    # Came in with someone else's personal link: the link is revoked; one whose own tier lets
    # them in is recorded as themself (WRONG_LINK), anyone else goes out again (WRONG_PERSON).
    WRONG_LINK = "wrong_link"
    WRONG_PERSON = "wrong_person"


async def _community_of(session: AsyncSession, chat_id: int) -> Community | None:
    """The community whose Telegram group this is (group ids are the only group chats)."""
    return await communities.by_telegram_chat(session, chat_id)


async def group_member_joined(
    services: Services,
    chat_id: int,
    channel: str,
    external_id: str,
    *,
    link: str | None = None,
    display_name: str | None = None,
) -> GroupJoin:
    """Someone is now in a community's group; `link` is the invite link they used, if any."""
    now = services.clock.now()
    async with services.db.reader() as session:
        community = await _community_of(session, chat_id)
    if community is None:
        return GroupJoin.NOT_OURS
    member, _ = await members.get_or_create(
        services.db, channel, external_id, now, display_name=display_name
    )
    async with services.db.transaction() as session:
        owner = await communities.link_owner(session, link) if link else None
        ours = owner is not None and owner.community_id == community.id
        outcome = GroupJoin.RECORDED
        if owner is not None and ours and owner.member_id != member.id:
            await communities.mark_revoked(session, owner.link)
            log.warning(
                "group link used by someone else community=%s owner=%s",
                community.slug,
                owner.member_id,
            )
            if not qualifies(services.rules, member, community):
                return GroupJoin.WRONG_PERSON
            outcome = GroupJoin.WRONG_LINK
        await communities.join(session, community.id, member.id, channel, now)
    return outcome


async def group_member_left(
    services: Services, chat_id: int, channel: str, external_id: str
) -> bool:
    """Someone left or was removed from a community's group; True when it was a member."""
    async with services.db.transaction() as session:
        community = await _community_of(session, chat_id)
        if community is None:
            return False
        member = await members.find_by_identity(session, channel, external_id)
        if member is None:
            return False
        return await communities.leave(session, community.id, member.id, services.clock.now())


@dataclass(frozen=True)
class JoinDecision:
    approve: bool
    explanation: Reply | None = None  # for the applicant, privately, when declined


async def join_request(
    services: Services,
    chat_id: int,
    channel: str,
    external_id: str,
    *,
    locale_hint: str | None = None,
    display_name: str | None = None,
) -> JoinDecision | None:
    """Someone asked to join a community's group: approved by tier. None: not our group."""
    async with services.db.reader() as session:
        community = await _community_of(session, chat_id)
    if community is None:
        return None
    member, _ = await members.get_or_create(
        services.db, channel, external_id, services.clock.now(), display_name=display_name
    )
    if qualifies(services.rules, member, community):
        return JoinDecision(True)
    t = Translator(pick_locale(member.locale, locale_hint, services.settings.default_locale))
    return JoinDecision(False, Reply(locked_text(t, services.rules, member, community)))


def _group_number(group_id: str) -> int | None:
    """Group chats are negative numbers; anything else is no community's group."""
    return int(group_id) if group_id.startswith("-") and group_id[1:].isdigit() else None


@router.action(JoinedGroup.action)
async def joined_group(msg: Inbound, ctx: Context) -> None:
    """Record the join; a one-person link that let the wrong person in is revoked, and a
    person below the community's tier goes out again (a forwarded link must not get round
    the gate)."""
    assert isinstance(msg.event, JoinedGroup)
    group, link = msg.event.group_id, msg.event.link
    chat_id = _group_number(group)
    if chat_id is None:
        return None
    services = ctx.services
    joined = await group_member_joined(
        services, chat_id, msg.channel, msg.external_id, link=link, display_name=msg.display_name
    )
    access = services.senders.group_access(msg.channel)
    if joined in (GroupJoin.WRONG_PERSON, GroupJoin.WRONG_LINK) and link is not None:
        await access.revoke_link(group, link)
    if joined is GroupJoin.WRONG_PERSON:
        await access.remove(group, msg.external_id)
    return None


@router.action(LeftGroup.action)
async def left_group(msg: Inbound, ctx: Context) -> None:
    assert isinstance(msg.event, LeftGroup)
    chat_id = _group_number(msg.event.group_id)
    if chat_id is not None:
        await group_member_left(ctx.services, chat_id, msg.channel, msg.external_id)
    return None


@router.action(AskedToJoin.action)
async def asked_to_join(msg: Inbound, ctx: Context) -> None:
    """Decided by tier; a declined applicant is told why in the private chat that the app
    opens for the request (they may never have started the bot)."""
    assert isinstance(msg.event, AskedToJoin)
    event, services = msg.event, ctx.services
    chat_id = _group_number(event.group_id)
    decision = None
    if chat_id is not None:
        decision = await join_request(
            services,
            chat_id,
            msg.channel,
            msg.external_id,
            locale_hint=msg.locale_hint,
            display_name=msg.display_name,
        )
    if decision is None or chat_id is None:
        return None
    access = services.senders.group_access(msg.channel)
    if not await access.answer_join_request(event.group_id, msg.external_id, decision.approve):
        return None  # e.g. an admin handled the request first: nothing left to do or to say
    if decision.approve:
        await group_member_joined(
            services, chat_id, msg.channel, msg.external_id, display_name=msg.display_name
        )
    elif decision.explanation is not None:
        # Keyed by the update when the app numbers it: a redelivery tells the applicant once.
        target = Target(msg.channel, event.reply_chat_id)
        request = msg.message_id or services.clock.now().isoformat()
        key = f"join-decline:{msg.channel}:{event.group_id}:{msg.external_id}:{request}"
        async with services.db.transaction() as session:
            await services.pushes.to_chat(
                session, target, "invite-decision", key, decision.explanation
            )
        services.pushes.wake()
    return None
