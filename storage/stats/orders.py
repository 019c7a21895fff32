"""Orders of the period: totals, repurchase rate, and spend per member by tier.

Money stays Decimal and is shown as text with two decimals (amounts of one shop's currency).
A wholly refunded order counts among `refunded`, not as a purchase; partial refunds are
taken off the spend.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, Order
from storage.stats.window import Window, rate

CENT = Decimal("0.01")


def money(value: Any) -> str:
    return str(Decimal(str(value or 0)).quantize(CENT))


def _per(total: Decimal, count: int) -> str | None:
    return money(total / count) if count else None


async def summary(session: AsyncSession, window: Window, tiers: dict[str, int]) -> dict[str, Any]:
    return shape(await fetch(session, window), tiers)


@dataclass(frozen=True)
class Fetched:
    """The period's orders as the database sums them: totals, and per tier (the member's tier
    now) buyers, repeat buyers and spend. `shape` adds the tiers' sizes."""

    count: int
    refunds: int
    gross: Decimal
    given_back: Decimal
    rows: dict[str, tuple[int, int, Decimal]]


async def fetch(session: AsyncSession, window: Window) -> Fetched:
    """The two statements, which need nothing of the other figures (so they may run beside
    them on another connection)."""
    in_period = (Order.created_at >= window.start, Order.created_at <= window.now)
    refunded = Order.status == "refunded"
    totals = select(
        func.count(),
        func.coalesce(func.sum(case((refunded, 1), else_=0)), 0),
        func.coalesce(func.sum(Order.amount), 0),
        func.coalesce(func.sum(Order.refunded_amount), 0),
    ).where(*in_period)
    count, refunds, gross, given_back = (await session.execute(totals)).one()
    # One row per buyer (bought and kept at least part of it), then per tier.
    buyers = (
        select(
            Order.member_id,
            func.count().label("orders"),
            func.sum(Order.amount - Order.refunded_amount).label("spend"),
        )
        .where(*in_period, ~refunded)
        .group_by(Order.member_id)
        .subquery()
    )
    per_tier = (
        select(
            Member.tier,
            func.count(),
            func.coalesce(func.sum(case((buyers.c.orders >= 2, 1), else_=0)), 0),
            func.coalesce(func.sum(buyers.c.spend), 0),
        )
        .join(Member, Member.id == buyers.c.member_id)
        .group_by(Member.tier)
    )
    rows = {
        tier: (int(b), int(r), Decimal(str(s))) for tier, b, r, s in await session.execute(per_tier)
    }
    return Fetched(int(count), int(refunds), Decimal(str(gross)), Decimal(str(given_back)), rows)


def shape(fetched: Fetched, tiers: dict[str, int]) -> dict[str, Any]:
    """The orders' figures, per tier with its members (`tiers`: every tier of the rules)."""
    rows = fetched.rows
    by_tier: dict[str, dict[str, Any]] = {}
    for tier in dict.fromkeys([*tiers, *rows]):
        b, r, spend = rows.get(tier, (0, 0, Decimal(0)))
        size = tiers.get(tier, 0)
        by_tier[tier] = {
            "members": size,
            "buyers": b,
            "repeat_buyers": r,
            "repurchase_rate": rate(r, b),
            "spend": money(spend),
            "spend_per_member": _per(spend, size),
            "spend_per_buyer": _per(spend, b),
        }
    all_buyers = sum(v["buyers"] for v in by_tier.values())
    repeat = sum(v["repeat_buyers"] for v in by_tier.values())
    gross_d, back_d = fetched.gross, fetched.given_back
    return {
        "count": fetched.count,
        "refunded": fetched.refunds,
        "amount": money(gross_d),
        "refunded_amount": money(back_d),
        "net": money(gross_d - back_d),
        "buyers": all_buyers,
        "repeat_buyers": repeat,
        "repurchase_rate": rate(repeat, all_buyers),
        "by_tier": by_tier,
    }
