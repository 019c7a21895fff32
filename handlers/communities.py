"""Interest communities: the list with the member's status, joining by tier, leaving.

What a community's group chat reports (joins, leaves, join requests) is in handlers/groups.py.
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta

from bot.core.context import Context
from bot.core.errors import DomainError
from bot.core.i18n import N_, Translator
from bot.core.messages import Button, Inbound, Reply
from bot.core.middleware import APOLOGY
from bot.core.router import Router
from bot.settings import Rules
from handlers.tiers import tier_label
from storage import communities, members
from storage.models import Community, Member

router = Router("communities")

MAX_JOIN_BUTTONS = 6
GROUP_LINK_HOURS = 24
SLUG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


# Whose name a reader of each language can read when theirs is missing: traditional-Chinese
# readers read simplified Chinese far better than English.
NAME_FALLBACKS = {"zh_TW": ("zh_TW", "zh_CN", "en"), "zh_CN": ("zh_CN", "zh_TW", "en")}


def name_of(community: Community, locale: str) -> str:
    names = community.names or {}
    for tried in NAME_FALLBACKS.get(locale, (locale, "en")):
        if names.get(tried):
            return names[tried]
    return next(iter(names.values()), community.slug)


def named(community: Community, typed: str) -> bool:
    """Whether `typed` (NFKC, lower-cased) is one of the community's names, in any language."""
    names = (community.names or {}).values()
    return any(" ".join(unicodedata.normalize("NFKC", n).lower().split()) == typed for n in names)


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


@router.action(
    "communities",
    commands=("communities",),
    keywords={"zh_CN": ("社群",), "zh_TW": ("社群",), "en": ("communities",)},
    menu="COMMUNITIES",
    label=N_("Communities"),
    help=N_("Interest communities: “communities” or /communities"),
    summary=N_("Interest communities to join"),
)
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
    slug = " ".join(unicodedata.normalize("NFKC", raw).lower().split())
    if not slug:
        raise DomainError(N_("Which one? Send “communities” to see the list."))
    found = None
    async with ctx.services.db.reader() as session:
        if len(slug) <= 32 and set(slug) <= SLUG_CHARS:
            found = await communities.by_slug(session, slug)
        if found is None:
            # The list shows names, not only slugs: "加入 咖啡爱好者", "join Coffee lovers".
            found = next((c for c in await communities.listing(session) if named(c, slug)), None)
    if found is None:
        raise DomainError(
            N_("There is no community called {slug}. Send “communities” to see the list."),
            slug=slug[:32],
        )
    return found


@router.action(
    "join",
    commands=("join",),
    keywords={"zh_CN": ("加入",), "zh_TW": ("加入",), "en": ("join",)},
    menu="JOIN",
)
async def join(msg: Inbound, ctx: Context) -> Reply:
    services, t, me = ctx.services, ctx.t, ctx.me
    community = await _community(ctx, msg.args)
    name = name_of(community, ctx.locale)
    if not qualifies(services.rules, me, community):
        raise DomainError(locked_text(t, services.rules, me, community))
    if msg.channel == "telegram" and community.telegram_chat_id is not None:
        # Telegram: the membership is recorded when they really join the group.
        return await _personal_link(ctx, community, name)
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


async def _personal_link(ctx: Context, community: Community, name: str) -> Reply:
    """A link that lets one person in for a day; kept, so the join tells who came."""
    services, t = ctx.services, ctx.t
    hours = GROUP_LINK_HOURS
    chat_id = str(community.telegram_chat_id)
    link_name = f"memberbot {community.slug}"[:32]
    url = await services.senders.group_access("telegram").personal_link(chat_id, link_name, hours)
    if url is None:
        raise DomainError(APOLOGY)
    now = services.clock.now()
    async with services.db.transaction() as session:
        await communities.save_link(
            session, url, community.id, ctx.me.id, now, now + timedelta(hours=hours)
        )
    text = t(
        N_(
            "Here is your personal link to {name}. It lets one person in and expires in "
            "{hours} hours: {url}"
        ),
        name=name,
        hours=hours,
        url=url,
    )
    # A one-person link shown in a group would be anyone's: private, like all of these.
    open_it = Button(t(N_("Open {name}"), name=name), url=url)
    return Reply(text, buttons=(open_it,), private=True)


@router.action(
    "leave",
    commands=("leave",),
    keywords={"zh_CN": ("退出",), "zh_TW": ("退出",), "en": ("leave",)},
    menu="LEAVE",
)
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
        access = services.senders.group_access("telegram")
        for account in accounts:
            if account.channel == "telegram":
                await access.remove(str(community.telegram_chat_id), account.external_id)
    return Reply(
        t(
            N_("You left {name}. Send “join {slug}” to come back any time."),
            name=name,
            slug=community.slug,
        ),
        private=True,
    )
