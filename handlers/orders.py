"""Purchases fed in by the shop: points and growth for paid orders, reversed on refund."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.context import Services
from handlers.tiers import apply_growth
from storage import ledger, members, orders
from storage.db import once_more_if_needed
from storage.ledger import lock_member
from storage.models import Order

CHANNELS = ("wechat", "telegram", "console")


@dataclass(frozen=True)
class OrderIn:
    order_id: str
    channel: str
    external_id: str
    amount: Decimal
    currency: str
    status: str  # paid, refunded


@dataclass(frozen=True)
class OrderOutcome:
    order_id: str
    member_id: int
    result: str  # credited, reversed, duplicate, refund_recorded
    points: int
    growth: int
    tier: str


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


async def apply_order(services: Services, order: OrderIn) -> OrderOutcome:
    """Apply one order exactly once; the order id's unique constraint decides repeats.

    If the member is merged into another (accounts linked) meanwhile, or PostgreSQL aborted it
    to break a deadlock, nothing was written: it is applied once more (to the merged member)."""

    async def for_member() -> OrderOutcome:
        now = services.clock.now()
        member, _ = await members.get_or_create(services.db, order.channel, order.external_id, now)
        if order.status == "paid":
            return await _paid(services, order, member.id)
        return await _refunded(services, order, member.id)

    return await once_more_if_needed(for_member)


async def _paid(services: Services, order: OrderIn, member_id: int) -> OrderOutcome:
    now = services.clock.now()
    async with services.db.transaction() as session:
        fresh = await orders.insert_paid(
            session, order.order_id, member_id, order.amount, order.currency, now
        )
        if fresh:
            outcome = await _credit(services, session, order, member_id)
    if not fresh:
        return await _duplicate(services, order, member_id)
    services.metrics.points_issued.labels("order").inc(outcome.points)
    return outcome


async def _credit(
    services: Services, session: AsyncSession, order: OrderIn, member_id: int
) -> OrderOutcome:
    rules, now = services.rules, services.clock.now()
    held = (await lock_member(session, member_id)).tier  # the multiplier before this order
    # One floor over the exact product (SPEC): 99.90 × 1.2 is 119, not floor(99.90) × 1.2 = 118.
    multiplier = Decimal(str(rules.tier(held).multiplier))
    points = _floor(order.amount * rules.points.per_currency_unit * multiplier)
    growth = _floor(order.amount * rules.growth.per_currency_unit)
    if points:
        await ledger.earn(
            session,
            member_id,
            points,
            "order",
            f"order:{order.order_id}",
            now,
            expiry_days=rules.points.expiry_days,
        )
    change = await apply_growth(session, rules, member_id, growth)
    await orders.set_credit(session, order.order_id, points, growth)
    return OrderOutcome(order.order_id, member_id, "credited", points, growth, change.new)


async def _refunded(services: Services, order: OrderIn, member_id: int) -> OrderOutcome:
    now = services.clock.now()
    async with services.db.transaction() as session:
        # The member before the order's row: the order a merge of two members locks them in.
        known = await orders.get(session, order.order_id)
        if known is not None:
            await lock_member(session, known.member_id)
        paid = await orders.mark_refunded(session, order.order_id, now)
        recorded = False
        if paid is None:
            recorded = await orders.insert_refunded_unknown(
                session, order.order_id, member_id, order.amount, order.currency, now
            )
            if not recorded:
                # The id exists: a repeated refund, or its paid order committed while this insert
                # waited on it (PostgreSQL); a fresh statement sees that order and reverses it.
                paid = await orders.mark_refunded(session, order.order_id, now)
        if paid is not None:
            outcome = await _reverse(services, session, order, paid)
        elif recorded:
            tier = (await lock_member(session, member_id)).tier
    if paid is not None:
        return outcome
    if recorded:
        return OrderOutcome(order.order_id, member_id, "refund_recorded", 0, 0, tier)
    return await _duplicate(services, order, member_id)


async def _reverse(
    services: Services, session: AsyncSession, order: OrderIn, paid: Order
) -> OrderOutcome:
    rules, now = services.rules, services.clock.now()
    moved = await ledger.reverse(
        session,
        paid.member_id,
        paid.points,
        "refund",
        f"refund:{order.order_id}",
        now,
        lot_key=f"order:{order.order_id}",
    )
    change = await apply_growth(session, rules, paid.member_id, -paid.growth)
    return OrderOutcome(
        order.order_id, paid.member_id, "reversed", moved.amount, -paid.growth, change.new
    )


async def _duplicate(services: Services, order: OrderIn, member_id: int) -> OrderOutcome:
    async with services.db.reader() as session:
        known = await orders.get(session, order.order_id)
        member = await members.get(session, known.member_id if known else member_id)
    tier = member.tier if member else "bronze"
    return OrderOutcome(order.order_id, member_id, "duplicate", 0, 0, tier)
