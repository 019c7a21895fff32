"""Tiers: growth moves members up at once; `/tier` shows benefits and the way to the next."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Context
from bot.core.i18n import N_, Translator
from bot.core.messages import Inbound, Reply
from bot.core.router import Router
from bot.settings import Rules
from storage import members

router = Router("tiers")

TIER_LABELS = {
    "bronze": N_("Bronze"),
    "silver": N_("Silver"),
    "gold": N_("Gold"),
    "diamond": N_("Diamond"),
}

BENEFIT_LABELS = {
    "checkin_points": N_("Daily check-in points"),
    "birthday_double": N_("Double check-in points on your birthday"),
    "points_x1_2": N_("1.2× points on purchases and check-ins"),
    "points_x1_5": N_("1.5× points on purchases and check-ins"),
    "points_x2": N_("2× points on purchases and check-ins"),
    "member_communities": N_("Members-only communities"),
    "early_flash_sales": N_("Early access to flash sales"),
    "priority_support": N_("Priority support"),
}

BAR_CELLS = 10


def tier_label(t: Translator, name: str) -> str:
    label = TIER_LABELS.get(name)
    return t(label) if label else name.title()


def benefit_lines(t: Translator, rules: Rules, tier: str) -> str:
    benefits = rules.tier(tier).benefits
    return "\n".join(f"• {t(BENEFIT_LABELS[b]) if b in BENEFIT_LABELS else b}" for b in benefits)


def apply_multiplier(points: int, multiplier: float) -> int:
    """Points × tier multiplier, rounded down (Decimal, so 5 × 1.2 is exactly 6)."""
    exact = Decimal(points) * Decimal(str(multiplier))
    return int(exact.to_integral_value(rounding=ROUND_FLOOR))


@dataclass(frozen=True)
class TierChange:
    growth: int
    old: str
    new: str

    @property
    def upgraded(self) -> bool:
        return self.new != self.old


async def apply_growth(
    session: AsyncSession, rules: Rules, member_id: int, delta: int
) -> TierChange:
    """Add growth and move the member up at once if they crossed a threshold.

    Losing growth (a refund) never moves anyone down: that is the yearly review's job.
    """
    growth, held = await members.add_growth(session, member_id, delta)
    earned = rules.tier_for_growth(growth)
    if rules.tier_rank(earned.name) > rules.tier_rank(held):
        await members.set_tier(session, member_id, earned.name)
        return TierChange(growth, held, earned.name)
    return TierChange(growth, held, held)


def upgrade_text(t: Translator, rules: Rules, tier: str) -> str:
    return t(
        N_("Congratulations, you are now {tier}! Your benefits:\n{benefits}"),
        tier=tier_label(t, tier),
        benefits=benefit_lines(t, rules, tier),
    )


def progress_bar(growth: int, low: int, high: int) -> str:
    """Integer arithmetic, so 145 of 500 shows 29 % (a float share of 0.29 gave 28 %)."""
    span = max(high - low, 1)
    done = min(max(growth - low, 0), span)
    filled = done * BAR_CELLS // span
    return "▓" * filled + "░" * (BAR_CELLS - filled) + f" {done * 100 // span}%"


@router.action(
    "tier",
    commands=("tier",),
    keywords={"zh_CN": ("等级", "会员"), "zh_TW": ("等級", "會員"), "en": ("tier",)},
    menu="TIER",
    label=N_("Tier"),
    help=N_("Your tier and benefits: “tier” or /tier"),
    summary=N_("Your tier, benefits and progress"),
    phrases={
        "zh_CN": ("我的等级", "会员等级", "我的会员"),
        "zh_TW": ("我的等級", "會員等級", "我的會員"),
        "en": ("my tier", "my level", "level"),
    },
)
async def show_tier(msg: Inbound, ctx: Context) -> Reply:
    """Current tier, its benefits, and how much growth the next one needs."""
    t, rules, me = ctx.t, ctx.services.rules, ctx.me
    held = rules.tier(me.tier)
    lines = [
        t(
            N_("Your tier: {tier} (points ×{multiplier})"),
            tier=tier_label(t, held.name),
            multiplier=f"{held.multiplier:g}",
        ),
        t(N_("Growth: {growth}"), growth=me.growth),
        t(N_("Benefits:")),
        benefit_lines(t, rules, held.name),
    ]
    if held.discount is not None and held.discount < 1:
        off = f"{round((1 - held.discount) * 100, 2):g}"
        lines.append(t(N_("• Discount at the shop's till: {percent}%"), percent=off))
    upcoming = rules.next_tier(held.name)
    if upcoming is None:
        lines.append(t(N_("You are at the top tier. Thank you!")))
    else:
        lines.append(progress_bar(me.growth, held.threshold, upcoming.threshold))
        lines.append(
            t(
                N_("{needed} more growth to {tier}"),
                needed=max(upcoming.threshold - me.growth, 0),
                tier=tier_label(t, upcoming.name),
            )
        )
    return Reply("\n".join(lines), private=True)
