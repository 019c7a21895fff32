"""What flash sales say on their own: the group announcement and its live counter, the
WeChat members' notice, and the moderator's summary; the start and the end that cause them.

Each is an outbox push written in the transaction of its cause, under a dedupe key, so a
start or an end run twice (two processes, a retried job) pushes once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Services
from bot.core.i18n import N_, Translator
from bot.core.messages import Button, Reply
from bot.jobs.pushes import push_to_chat, push_to_member
from handlers.communities import name_of
from handlers.tiers import tier_label
from storage import flash_claims, flashsales, outbox
from storage.flash_stock import fast_path
from storage.models import Community, FlashSale

log = logging.getLogger("memberbot.flashsales")

EDIT_EVERY = 5  # seconds: at most one counter edit per group in such a window (20/min limit)
BUTTON_PREFIX = "fs"  # the claim button's action: "fs:<code>"


def local(services: Services, at: datetime) -> str:
    return at.astimezone(services.settings.tz).strftime("%Y-%m-%d %H:%M")


def early_minutes(services: Services, tier: str) -> int:
    return services.rules.tier(tier).flash_sale_early_minutes


def opens_for(services: Services, sale: FlashSale, tier: str) -> datetime:
    """When a member of `tier` may start claiming: the start, earlier with early access."""
    return sale.starts_at - timedelta(minutes=early_minutes(services, tier))


def early_tier(services: Services) -> tuple[str, int] | None:
    """The lowest tier with early access, and how early it may claim."""
    for tier in services.rules.tiers:
        if tier.flash_sale_early_minutes > 0:
            return tier.name, tier.flash_sale_early_minutes
    return None


def announcement(services: Services, t: Translator, sale: FlashSale, name: str) -> Reply:
    """The group post: title, price, remaining, limit, end; the claim button while open."""
    lines = [
        t(N_("⚡ Flash sale in {community}: {title}"), community=name, title=sale.title),
        t(
            N_("Price {price} · {remaining} of {stock} left · limit {limit} per member"),
            price=sale.price,
            remaining=sale.stock - sale.claimed,
            stock=sale.stock,
            limit=sale.per_member_limit,
        ),
    ]
    if sale.state in flashsales.OPEN and sale.claimed < sale.stock:
        lines.append(
            t(
                N_("From {start} to {end}. Tap the button or send “claim {code}”."),
                start=local(services, sale.starts_at),
                end=local(services, sale.ends_at),
                code=sale.code,
            )
        )
        early = early_tier(services)
        if early is not None:
            lines.append(
                t(
                    N_("{tier} members and above may claim up to {minutes} minutes early."),
                    tier=tier_label(t, early[0]),
                    minutes=early[1],
                )
            )
        button = Button(t(N_("Claim")), f"{BUTTON_PREFIX}:{sale.code}")
        return Reply("\n".join(lines), buttons=(button,))
    lines.append(t(N_("This flash sale has ended.")))
    return Reply("\n".join(lines))


async def community_of(session: AsyncSession, sale: FlashSale) -> Community:
    found = await session.get(Community, sale.community_id)
    assert found is not None, "a sale's community is never deleted"
    return found


async def counter_edit(
    session: AsyncSession,
    services: Services,
    sale: FlashSale,
    now: datetime,
    community: Community | None = None,
) -> None:
    """Keep the group's count current: at most one edit per EDIT_EVERY seconds, sent at the
    end of its window; until then every claim's newer count replaces its text."""
    # The count this transaction made, for the text (`sale` may be a copy from before).
    fresh = await session.get(FlashSale, sale.id, populate_existing=True)
    assert fresh is not None
    if fresh.announce_id is None:
        return
    window = int(now.timestamp()) // EDIT_EVERY
    key = f"flashsale:{sale.id}:count:{window}"
    pushed = await _edit(session, services, fresh, key, now, community)
    if pushed is not None:
        window_end = datetime.fromtimestamp((window + 1) * EDIT_EVERY, UTC)
        await flashsales.put_off_push(session, pushed, key, window_end)


async def _edit(
    session: AsyncSession,
    services: Services,
    sale: FlashSale,
    key: str,
    now: datetime,
    community: Community | None = None,
) -> int | None:
    assert sale.announce_id is not None
    community = community or await community_of(session, sale)
    t = Translator(services.settings.default_locale)
    reply = announcement(services, t, sale, name_of(community, t.locale))
    return await outbox.enqueue_edit(session, key, sale.announce_id, reply.to_json(), now)


async def start_sale(services: Services, sale_id: int) -> bool:
    """scheduled -> live: announce in the group, tell the WeChat members; False if done."""
    async with services.db.transaction() as session:
        sale = await flashsales.go_live(session, sale_id)
        if sale is None:
            return False
        community = await community_of(session, sale)
        t = Translator(services.settings.default_locale)
        announce_id = None
        if community.telegram_chat_id is not None:
            target = outbox.Target("telegram", str(community.telegram_chat_id), None, outbox.POST)
            reply = announcement(services, t, sale, name_of(community, t.locale))
            announce_id = await push_to_chat(
                session,
                services,
                target,
                "flashsale-announce",
                f"flashsale:{sale.id}:announce",
                reply,
            )
        unreached = 0

        def notice(mt: Translator) -> Reply:
            return _member_notice(services, mt, sale, community)

        for member_id in await flashsales.wechat_members(session, community.id):
            queued = await push_to_member(
                session,
                services,
                member_id,
                "flashsale-push",
                f"{flashsales.push_prefix(sale.id)}{member_id}",
                notice,
                channels=("wechat",),
            )
            unreached += queued is None
        await flashsales.set_announcement(session, sale.id, announce_id, unreached)
    fast = fast_path(services.cache)
    if fast is not None:
        await fast.rebuild(services.db, sale_id)  # ready before the crowd arrives
    log.info("flash sale live sale=%s", sale_id)
    return True


def _member_notice(services: Services, t: Translator, sale: FlashSale, c: Community) -> Reply:
    return Reply(
        t(
            N_(
                "⚡ Flash sale in {community}: {title} for {price}, {stock} in stock, "
                "until {end}. Send “抢 {code}” to claim."
            ),
            community=name_of(c, t.locale),
            title=sale.title,
            price=sale.price,
            stock=sale.stock,
            end=local(services, sale.ends_at),
            code=sale.code,
        )
    )


async def cancelled_edit(
    session: AsyncSession, services: Services, sale_id: int, now: datetime
) -> None:
    """A cancelled sale's announcement says it is over (in the cancelling transaction)."""
    sale = await session.get(FlashSale, sale_id)
    if sale is not None:
        await session.refresh(sale)
        if sale.announce_id is not None:
            await _edit(session, services, sale, f"flashsale:{sale.id}:final", now)


async def end_sale(session: AsyncSession, services: Services, sale_id: int, now: datetime) -> bool:
    """live -> ended (time up or sold out) in the caller's transaction: the final counter
    edit and the moderator's summary, once; False when it had ended already."""
    sale = await flashsales.close(session, sale_id, now)
    if sale is None:
        return False
    if sale.announce_id is not None:
        await _edit(session, services, sale, f"flashsale:{sale.id}:final", now)
    if sale.created_by is not None:
        members_won = await flash_claims.winners(session, sale.id)
        unreached = sale.unreached + await flashsales.pushes_not_delivered(session, sale.id)
        await push_to_member(
            session,
            services,
            sale.created_by,
            "flashsale-summary",
            f"flashsale:{sale.id}:summary",
            lambda t: Reply(_summary(t, sale, members_won, unreached)),
        )
    log.info("flash sale ended sale=%s claimed=%s", sale.id, sale.claimed)
    return True


def _summary(t: Translator, sale: FlashSale, members_won: int, unreached: int) -> str:
    lines = [
        t(
            N_(
                "Flash sale {title} ({code}) has ended: "
                "{claimed} of {stock} claimed by {members} members."
            ),
            title=sale.title,
            code=sale.code,
            claimed=sale.claimed,
            stock=sale.stock,
            members=members_won,
        )
    ]
    if sale.sold_out_at is not None:
        minutes = max(0, int((sale.sold_out_at - sale.starts_at).total_seconds() // 60))
        lines.append(t(N_("Sold out in {minutes} minutes."), minutes=minutes))
    lines.append(t(N_("WeChat members out of reach: {count}."), count=unreached))
    return "\n".join(lines)


async def run_due(services: Services) -> int:
    """Start the sales whose time came and end those past their end: how many changed."""
    now = services.clock.now()
    async with services.db.reader() as session:
        starting = await flashsales.due_to_start(session, now)
    done = 0
    for sale_id in starting:
        done += await start_sale(services, sale_id)
    async with services.db.reader() as session:
        ending = await flashsales.due_to_end(session, now)
    for sale_id in ending:
        async with services.db.transaction() as session:
            done += await end_sale(session, services, sale_id, now)
    if done:
        services.pushes.wake()
    return done
