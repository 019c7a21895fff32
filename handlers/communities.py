"""Interest communities: the list with the member's status, joining by tier, leaving.

Also what the Telegram channel asks when its groups change (someone joined, left, asked to
join): the decisions live here, the adapter only carries them out.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from enum import Enum

from bot.core.context import Context, Services
from bot.core.errors import DomainError
from bot.core.i18n import N_, Translator, pick_locale
from bot.core.messages import Button, Inbound, Reply
from bot.core.router import Router
from bot.settings import Rules
from handlers.tiers import tier_label
from storage import communities, members
from storage.models import Community, Member

router = Router("communities")
log = logging.getLogger("memberbot.communities")

MAX_JOIN_BUTTONS = 6
SLUG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def name_of(community: Community, locale: str) -> str:
    names = community.names or {}
    return names.get(locale) or names.get("en") or next(iter(names.values()), community.slug)


def qualifies(rules: Rules, member: Member, community: Community) -> bool:
    return rules.tier_rank(member.tier) >= rules.tier_rank(community.min_tier)


def locked_text(t: Translator, rules: Rules, member: Member, community: Community) -> str:
    needed = rules.tier(community.min_tier)
    return t(
        N_(
            "{name} is for {tier} members and above. You are {mine}: "
            "{missing} more growth to {tier}."
        ),
        name=name_of(community, t.locale),
        tier=tier_label(t, needed.name),
        mine=tier_label(t, member.tier),
        missing=max(needed.threshold - member.growth, 0),
    )


@router.action("communities")
async def show_communities(msg: Inbound, ctx: Context) -> Reply:
    services, t, me = ctx.services, ctx.t, ctx.me
    rules = services.rules
    async with services.db.reader() as session:
        found = await communities.listing(session)
        mine = await communities.joined_ids(session, me.id)
    if not found:
        return Reply(t(N_("There are no communities yet.")))
    lines = [t(N_("Communities:"))]
    buttons: list[Button] = []
    for c in found:
        name = name_of(c, ctx.locale)
        if c.id in mine:
            status = t(N_("you are in (leave: “leave {slug}”)"), slug=c.slug)
        elif qualifies(rules, me, c):
            status = t(N_("join: “join {slug}”"), slug=c.slug)
            if len(buttons) < MAX_JOIN_BUTTONS:
                buttons.append(Button(t(N_("Join {name}"), name=name), f"JOIN:{c.slug}"))
        else:
            status = t(N_("🔒 for {tier} and above"), tier=tier_label(t, c.min_tier))
        lines.append(f"• {name} ({c.slug}) — {status}")
        if c.description:
            lines.append(f"  {c.description}")
    return Reply("\n".join(lines), buttons=tuple(buttons), private=True)


async def _community(ctx: Context, raw: str) -> Community:
    slug = unicodedata.normalize("NFKC", raw).strip().lower()
    if not slug:
        raise DomainError(N_("Which one? Send “communities” to see the list."))
    found = None
    if len(slug) <= 32 and set(slug) <= SLUG_CHARS:
        async with ctx.services.db.reader() as session:
            found = await communities.by_slug(session, slug)
    if found is None:
        raise DomainError(
            N_("There is no community called {slug}. Send “communities” to see the list."),
            slug=slug[:32],
        )
    return found


@router.action("join")
async def join(msg: Inbound, ctx: Context) -> Reply:
    services, t, me = ctx.services, ctx.t, ctx.me
    community = await _community(ctx, msg.args)
    name = name_of(community, ctx.locale)
    if not qualifies(services.rules, me, community):
        raise DomainError(locked_text(t, services.rules, me, community))
    access = await services.outreach.port(msg.channel).group_invite(community, me)
    if access is not None:
        # Telegram: the membership is recorded when they really join the group.
        text = t(
            N_(
                "Here is your personal link to {name}. It lets one person in and expires in "
                "{hours} hours: {url}"
            ),
            name=name,
            hours=access.hours,
            url=access.url,
        )
        # A one-person link shown in a group would be anyone's: private, like all of these.
        open_it = Button(t(N_("Open {name}"), name=name), url=access.url)
        return Reply(text, buttons=(open_it,), private=True)
    async with services.db.transaction() as session:
        joined = await communities.join(
            session, community.id, me.id, msg.channel, services.clock.now()
        )
    lines = [
        t(N_("You joined {name}!"), name=name)
        if joined
        else t(N_("You are already in {name}."), name=name)
    ]
    if community.wechat_qr:
        lines.append(
            t(N_("Scan the QR code to join its WeChat group: {url}"), url=community.wechat_qr)
        )
    if community.telegram_chat_id is not None and msg.channel != "telegram":
        lines.append(
            t(
                N_("It also has a Telegram group: send /join {slug} to me on Telegram."),
                slug=community.slug,
            )
        )
    return Reply("\n".join(lines), private=True)


@router.action("leave")
async def leave(msg: Inbound, ctx: Context) -> Reply:
    services, t, me = ctx.services, ctx.t, ctx.me
    community = await _community(ctx, msg.args)
    name = name_of(community, ctx.locale)
    async with services.db.transaction() as session:
        left = await communities.leave(session, community.id, me.id, services.clock.now())
        accounts = await members.identities_of(session, me.id)
    if not left:
        raise DomainError(N_("You are not in {name}."), name=name)
    if community.telegram_chat_id is not None:
        port = services.outreach.port("telegram")
        for account in accounts:
            if account.channel == "telegram":
                await port.remove_from_group(community, account.external_id)
    return Reply(
        t(
            N_("You left {name}. Send “join {slug}” to come back any time."),
            name=name,
            slug=community.slug,
        ),
        private=True,
    )


# -- what a Telegram group tells us --------------------------------------------------------


class GroupJoin(Enum):
    NOT_OURS = "not_ours"  # a chat that is no community's group
    RECORDED = "recorded"
    # Came in with someone else's personal link: the link is revoked; one whose own tier lets
    # them in is recorded as themself (WRONG_LINK), anyone else goes out again (WRONG_PERSON).
    WRONG_LINK = "wrong_link"
    WRONG_PERSON = "wrong_person"


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
        community = await communities.by_telegram_chat(session, chat_id)
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
        community = await communities.by_telegram_chat(session, chat_id)
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
        community = await communities.by_telegram_chat(session, chat_id)
    if community is None:
        return None
    member, _ = await members.get_or_create(
        services.db, channel, external_id, services.clock.now(), display_name=display_name
    )
    if qualifies(services.rules, member, community):
        return JoinDecision(True)
    t = Translator(pick_locale(member.locale, locale_hint, services.settings.default_locale))
    return JoinDecision(False, Reply(locked_text(t, services.rules, member, community)))
