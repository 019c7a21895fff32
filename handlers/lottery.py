"""Points lotteries: `/draw` lists them with their odds, `/draw SLUG` spends the cost and
draws a prize among those still in stock, by weight, in one transaction."""

from __future__ import annotations

import secrets

from bot.core.context import Context
from bot.core.errors import DomainError
from bot.core.i18n import N_
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from handlers.badges import FIRST_REDEMPTION, announce
from handlers.rewards import clean_slug, find_reward, name_of, refusal, short_of, tier_check
from storage import badges, rewards, vouchers
from storage.errors import InsufficientPoints
from storage.models import Reward, RewardPrize

router = Router("lottery")


def odds_lines(ctx: Context, prizes: list[RewardPrize]) -> list[str]:
    """Each prize still in stock with its chance of being drawn now."""
    pool = [p for p in prizes if p.stock is None or p.stock > 0]
    total = sum(p.weight for p in pool)
    lines = []
    for prize in pool:
        left = "" if prize.stock is None else " · " + ctx.t(N_("{stock} left"), stock=prize.stock)
        lines.append(f"  {name_of(prize, ctx.locale)}: {prize.weight * 100 / total:.1f}%{left}")
    return lines


def draw_key(msg: Inbound, member_id: int) -> str:
    """One draw per message: an app's redelivery of the same message (after a crash between
    the commit and the answer) draws nothing more. The terminal has no message ids."""
    if msg.message_id:
        return f"draw:{member_id}:{msg.channel}:{msg.message_id}"[:160]
    return f"draw:{member_id}:{secrets.token_hex(8)}"


@router.action(
    "draw",
    commands=("draw",),
    keywords={"zh_CN": ("抽奖",), "zh_TW": ("抽獎",), "en": ("draw",)},
    help=N_("Lottery: “draw SLUG”"),
    summary=N_("Draw a prize for points"),
)
async def draw(msg: Inbound, ctx: Context) -> Reply:
    slug = clean_slug(msg.args)
    if not slug:
        return await _listing(ctx)
    t, me, services = ctx.t, ctx.me, ctx.services
    reward = await find_reward(services, slug)
    if reward is None or reward.kind != rewards.LOTTERY:
        raise DomainError(
            N_("There is no lottery called {slug}. Send “draw” to see them."), slug=slug
        )
    async with services.db.reader() as session:
        odds = odds_lines(ctx, (await rewards.prizes_of(session, [reward.id]))[reward.id])
    try:
        async with services.db.transaction() as session:
            done = await vouchers.redeem(
                session,
                me.id,
                reward.slug,
                draw_key(msg, me.id),
                services.clock.now(),
                tier_ok=tier_check(ctx),
            )
            now = services.clock.now()
            first = await badges.award(session, me.id, FIRST_REDEMPTION, now)
    except vouchers.Refused as exc:
        raise refusal(t, exc.reason, exc.reward or reward, slug) from None
    except InsufficientPoints as exc:
        raise short_of(t, exc) from None
    assert done.prize is not None
    day = done.voucher.expires_at.astimezone(services.settings.tz).date().isoformat()
    text = t(
        N_(
            "You drew: {prize}! Your voucher code: {code} (valid until {day}). "
            "Points left: {balance}.\nThe odds were:"
        ),
        prize=name_of(done.prize, ctx.locale),
        code=done.voucher.code,
        day=day,
        balance=done.balance,
    )
    given = announce(t, [FIRST_REDEMPTION] if first else [])
    return Reply("\n".join([text, *odds, *given]), private=True)


async def _listing(ctx: Context) -> Reply:
    t = ctx.t
    async with ctx.services.db.reader() as session:
        found: list[Reward] = [
            r for r in await rewards.listing(session) if r.kind == rewards.LOTTERY
        ]
        prizes = await rewards.prizes_of(session, [r.id for r in found])
    if not found:
        return Reply(t(N_("There are no lotteries right now.")), private=True)
    lines = [t(N_("Lotteries (you have {points} points):"), points=ctx.me.points)]
    for reward in found:
        cost = t(N_("{cost} points"), cost=reward.cost)
        how = t(N_("draw: “draw {slug}”"), slug=reward.slug)
        lines.append(f"• {name_of(reward, ctx.locale)} — {cost} — {how}")
        lines.extend(odds_lines(ctx, prizes[reward.id]) or ["  " + t(N_("all prizes are gone"))])
    return Reply("\n".join(lines), private=True)
