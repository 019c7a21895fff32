"""The points mall, member side: what can be redeemed (and what is missing), redeeming with
a confirmation, and the member's vouchers. Lottery draws are in handlers/lottery.py."""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Callable

from bot.core.context import Context, Services
from bot.core.dialogs import Dialogs
from bot.core.errors import DomainError
from bot.core.i18n import N_, Translator
from bot.core.messages import Button, Inbound, Reply
from bot.core.router import Router
from handlers.badges import FIRST_REDEMPTION, announce
from handlers.tiers import tier_label
from storage import badges, rewards, vouchers
from storage.errors import InsufficientPoints
from storage.models import Reward, RewardPrize, Voucher

router = Router("rewards")

CONFIRM_WORDS = frozenset({"确认", "確認", "yes", "y", "ok", "confirm"})
CONFIRM_TTL = 600
MAX_BUTTONS = 6
SLUG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
STATE_LABELS = {
    vouchers.ISSUED: N_("valid"),
    vouchers.USED: N_("used"),
    vouchers.EXPIRED: N_("expired"),
    vouchers.CANCELLED: N_("cancelled"),
}


def name_of(item: Reward | RewardPrize, locale: str) -> str:
    names = item.names or {}
    return names.get(locale) or names.get("en") or next(iter(names.values()), item.slug)


def missing(ctx: Context, reward: Reward, held: int) -> str | None:
    """Why the member cannot redeem the reward now, or None when they can."""
    t, me, rules = ctx.t, ctx.me, ctx.services.rules
    if rules.tier_rank(me.tier) < rules.tier_rank(reward.min_tier):
        return t(N_("{tier} members only"), tier=tier_label(t, reward.min_tier))
    if reward.stock == 0:
        return t(N_("sold out"))
    if reward.per_member_limit is not None and held >= reward.per_member_limit:
        return t(N_("limit reached ({limit} per member)"), limit=reward.per_member_limit)
    if me.points < reward.cost:
        return t(N_("{missing} more points"), missing=reward.cost - me.points)
    return None


def tier_check(ctx: Context) -> Callable[[str, str], bool]:
    """Whether a tier held reaches a tier needed, by the rules' order (for storage)."""
    rules = ctx.services.rules
    return lambda held, needed: rules.tier_rank(held) >= rules.tier_rank(needed)


def refusal(t: Translator, reason: str, reward: Reward | None, slug: str) -> DomainError:
    """A storage refusal in the member's words."""
    if reason in ("unknown", "inactive") or reward is None:
        return DomainError(
            N_("There is no reward called {slug}. Send “rewards” to see the mall."), slug=slug
        )
    if reason == "tier":
        return DomainError(
            N_("{name} is for {tier} members only."),
            name=name_of(reward, t.locale),
            tier=tier_label(t, reward.min_tier),
        )
    if reason == "limit":
        return DomainError(
            N_("You have already redeemed {name} {limit} times, the most allowed."),
            name=name_of(reward, t.locale),
            limit=reward.per_member_limit,
        )
    if reason == "empty":
        return DomainError(N_("All prizes of {name} are gone."), name=name_of(reward, t.locale))
    return DomainError(N_("{name} is sold out."), name=name_of(reward, t.locale))


def short_of(t: Translator, exc: InsufficientPoints) -> DomainError:
    return DomainError(
        N_("You need {missing} more points (you have {balance})."),
        missing=exc.wanted - exc.balance,
        balance=exc.balance,
    )


def clean_slug(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip().lower()[:32]


async def find_reward(services: Services, slug: str) -> Reward | None:
    if not slug or not set(slug) <= SLUG_CHARS:
        return None
    async with services.db.reader() as session:
        found = await rewards.by_slug(session, slug)
    return found if found is not None and found.active else None


@router.action(
    "rewards",
    commands=("rewards",),
    keywords={"zh_CN": ("积分商城",), "zh_TW": ("積分商城",), "en": ("rewards",)},
    phrases={"zh_CN": ("积分兑换",), "zh_TW": ("積分兌換",), "en": ("points mall",)},
    menu="REWARDS",
    label=N_("Rewards"),
    help=N_("Points mall: “rewards”, then “redeem SLUG”"),
    summary=N_("Spend your points"),
)
async def show_rewards(msg: Inbound, ctx: Context) -> Reply:
    return await mall(ctx)


async def mall(ctx: Context) -> Reply:
    """What the member can redeem now, and for the rest what is missing."""
    t, me = ctx.t, ctx.me
    async with ctx.services.db.reader() as session:
        found = await rewards.listing(session)
        held = await rewards.redeemed_by(session, me.id)
        prizes = await rewards.prizes_of(
            session, [r.id for r in found if r.kind == rewards.LOTTERY]
        )
    if not found:
        return Reply(t(N_("The points mall is empty for now.")), private=True)
    lines = [t(N_("Points mall (you have {points} points):"), points=me.points)]
    buttons: list[Button] = []
    for reward in found:
        name = name_of(reward, ctx.locale)
        why = missing(ctx, reward, held.get(reward.id, 0))
        lottery = reward.kind == rewards.LOTTERY
        if lottery and not any(p.stock is None or p.stock > 0 for p in prizes[reward.id]):
            status = t(N_("all prizes are gone"))
        elif why is not None:
            status = why
        elif lottery:
            status = t(N_("draw: “draw {slug}”"), slug=reward.slug)
        else:
            status = t(N_("redeem: “redeem {slug}”"), slug=reward.slug)
            if len(buttons) < MAX_BUTTONS:
                buttons.append(Button(t(N_("Redeem {name}"), name=name), f"REDEEM:{reward.slug}"))
        left = "" if reward.stock is None else " · " + t(N_("{stock} left"), stock=reward.stock)
        cost = t(N_("{cost} points"), cost=reward.cost)
        lines.append(f"• {name} ({reward.slug}) — {cost}{left} — {status}")
    return Reply("\n".join(lines), buttons=tuple(buttons), private=True)


@router.action(
    "redeem",
    commands=("redeem",),
    keywords={"zh_CN": ("兑换",), "zh_TW": ("兌換",), "en": ("redeem",)},
    menu="REDEEM",
)
async def redeem(msg: Inbound, ctx: Context) -> Reply:
    """Ask to confirm: the confirmation (button or 确认/確認/yes) spends the points."""
    t, me, services = ctx.t, ctx.me, ctx.services
    slug = clean_slug(msg.args)
    if not slug:
        return await mall(ctx)
    reward = await find_reward(services, slug)
    if reward is None:
        raise refusal(t, "unknown", None, slug)
    if reward.kind == rewards.LOTTERY:
        raise DomainError(
            N_("{name} is a lottery: send “draw {slug}”."),
            name=name_of(reward, ctx.locale),
            slug=reward.slug,
        )
    async with services.db.reader() as session:
        held = (await rewards.redeemed_by(session, me.id)).get(reward.id, 0)
    why = missing(ctx, reward, held)
    if why is not None:
        raise DomainError(
            N_("You cannot redeem {name} now: {why}."), name=name_of(reward, ctx.locale), why=why
        )
    nonce = secrets.token_hex(6)
    cache = services.cache
    await cache.set(cache.keys.confirmation(me.id, "redeem"), f"{reward.slug}:{nonce}", CONFIRM_TTL)
    await Dialogs(cache).ask(me.id, "redeem-confirm")
    text = t(
        N_(
            "Redeem {name} for {cost} points? You have {points}. "
            "Press the button or reply “yes” (确认) to confirm; anything else cancels."
        ),
        name=name_of(reward, ctx.locale),
        cost=reward.cost,
        points=me.points,
    )
    button = Button(t(N_("Confirm")), f"REDEEM_OK:{reward.slug}:{nonce}")
    return Reply(text, buttons=(button,), private=True)


@router.action("redeem-confirm", menu="REDEEM_OK")
async def confirm(msg: Inbound, ctx: Context) -> Reply:
    """The answer to the question: a button carries its slug and nonce, typed words use the
    pending one. The nonce keys the ledger entry: a confirmation redeems once, however often."""
    t, me, services = ctx.t, ctx.me, ctx.services
    cache = services.cache
    key = cache.keys.confirmation(me.id, "redeem")
    args = msg.args.strip()
    pending = args if ":" in args else None
    if pending is None:
        await Dialogs(cache).done(me.id)
        if unicodedata.normalize("NFKC", args).lower() not in CONFIRM_WORDS:
            await cache.delete(key)
            return Reply(t(N_("Cancelled: nothing was spent.")), private=True)
        pending = await cache.get(key)
        if pending is None:
            raise DomainError(N_("There is nothing to confirm. Send “rewards” to see the mall."))
    slug, _, nonce = pending.partition(":")
    try:
        async with services.db.transaction() as session:
            done = await vouchers.redeem(
                session,
                me.id,
                clean_slug(slug),
                f"redeem:{me.id}:{nonce[:24]}",
                services.clock.now(),
                tier_ok=tier_check(ctx),
            )
            now = services.clock.now()
            given = (
                [FIRST_REDEMPTION]
                if await badges.award(session, me.id, FIRST_REDEMPTION, now)
                else []
            )
    except vouchers.Refused as exc:
        raise refusal(t, exc.reason, exc.reward, clean_slug(slug)) from None
    except InsufficientPoints as exc:
        raise short_of(t, exc) from None
    await cache.delete(key)
    await Dialogs(cache).done(me.id)
    text = voucher_text(ctx, done.voucher, done.reward, done.balance)
    return Reply("\n".join([text, *announce(t, given)]), private=True)


def voucher_text(ctx: Context, voucher: Voucher, reward: Reward, balance: int) -> str:
    t = ctx.t
    day = voucher.expires_at.astimezone(ctx.services.settings.tz).date().isoformat()
    return t(
        N_(
            "Redeemed {name}! Your voucher code: {code} (show it at the till; valid until "
            "{day}). Points left: {balance}."
        ),
        name=name_of(reward, ctx.locale),
        code=voucher.code,
        day=day,
        balance=balance,
    )


@router.action(
    "vouchers",
    commands=("vouchers",),
    keywords={"zh_CN": ("我的券",), "zh_TW": ("我的券",), "en": ("vouchers",)},
    help=N_("My vouchers: “vouchers”"),
    summary=N_("Your vouchers"),
)
async def my_vouchers(msg: Inbound, ctx: Context) -> Reply:
    t, services = ctx.t, ctx.services
    now = services.clock.now()
    async with services.db.reader() as session:
        found = await vouchers.of_member(session, ctx.me.id)
        by_id = {r.id: r for r in await rewards.listing(session, active_only=False)}
    if not found:
        return Reply(
            t(N_("You have no vouchers yet. Send “rewards” to see the mall.")), private=True
        )
    lines = [t(N_("Your vouchers:"))]
    for v in found:
        day = v.expires_at.astimezone(services.settings.tz).date().isoformat()
        state = t(STATE_LABELS[vouchers.state_at(v, now)])
        until = t(N_("{state}, until {day}"), state=state, day=day)
        lines.append(f"• {v.code} — {name_of(by_id[v.reward_id], ctx.locale)} — {until}")
    return Reply("\n".join(lines), private=True)


async def expire_vouchers(services: Services) -> int:
    """Every minute (the deadlines job): issued vouchers past their date become expired."""
    async with services.db.transaction() as session:
        return await vouchers.expire_due(session, services.clock.now())
