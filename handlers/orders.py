"""Purchases fed in by the shop: points and growth for paid orders, taken back on refund
(whole or partial, pro rata), each order and each refund applied exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import local_day
from bot.core.context import Services
from bot.core.messages import Reply
from handlers.invites import lock_for_checkin, reward_on_first_checkin, tell_inviter
from handlers.tiers import apply_growth, upgrade_text
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
    amount: Decimal  # paid: the order's amount; refunded: this refund's amount
    currency: str
    status: str  # paid, refunded
    refund_id: str | None = None  # None: a refund of the whole order


@dataclass(frozen=True)
class OrderOutcome:
    order_id: str
    member_id: int
    result: str  # credited, reversed, duplicate, refund_recorded
    points: int
    growth: int
    tier: str
    refunded: Decimal | None = None  # refunds: the order's amount refunded so far
    upgraded: bool = False  # a tier reached: the member was sent a push


class OrderRefused(Exception):
    """What the order's history (or the member's bounds) does not allow; nothing was written."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class OrderConflict(OrderRefused):
    """Another member's order id, a refund beyond what is left, a refund id reused."""


class OrderInvalid(OrderRefused):
    """A value this order can never take; `field` names it."""

    def __init__(self, field: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.field = field


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _cents(amount: Decimal) -> int:
    return int(amount * 100)


def _not_the_owner(order: OrderIn, owner_id: int) -> OrderConflict:
    return OrderConflict(
        f"order {order.order_id} belongs to member {owner_id}, "
        f"not to {order.channel}:{order.external_id}",
        order_id=order.order_id,
        member_id=owner_id,
    )


async def apply_order(services: Services, order: OrderIn) -> OrderOutcome:
    """Apply one order (or refund) exactly once; unique keys decide repeats.

    An order id known for another member is refused before anyone is created. If the member
    is merged into another (accounts linked) meanwhile, or PostgreSQL aborted the work to
    break a deadlock, nothing was written: it is applied once more (to the merged member)."""

    async def for_member() -> OrderOutcome:
        await _check_owner(services, order)
        now = services.clock.now()
        member, _ = await members.get_or_create(services.db, order.channel, order.external_id, now)
        if order.status == orders.PAID:
            return await _paid(services, order, member.id)
        return await _refunded(services, order, member.id)

    return await once_more_if_needed(for_member)


async def _check_owner(services: Services, order: OrderIn) -> None:
    async with services.db.reader() as session:
        known = await orders.get(session, order.order_id)
        if known is None:
            return
        member = await members.find_by_identity(session, order.channel, order.external_id)
    if member is None or member.id != known.member_id:
        raise _not_the_owner(order, known.member_id)


async def _paid(services: Services, order: OrderIn, member_id: int) -> OrderOutcome:
    now = services.clock.now()
    told = False
    async with services.db.transaction() as session:
        # invites.reward_on = "first_order": the invitee and inviter are locked first, in the
        # order a merge locks them (as a check-in does when the reward waits for it).
        waiting = None
        if services.rules.invites.reward_on == "first_order":
            waiting = await lock_for_checkin(session, member_id)
        fresh = await orders.insert_paid(
            session, order.order_id, member_id, order.amount, order.currency, now
        )
        if fresh:
            outcome = await _credit(services, session, order, member_id)
            if waiting is not None:
                settled = await reward_on_first_checkin(
                    session, services, member_id, now, by_order=True
                )
                told = await tell_inviter(session, services, settled)
        else:
            # Posted at the same moment by another request (PostgreSQL waited for it).
            known = await orders.get(session, order.order_id)
            if known is not None and known.member_id != member_id:
                raise _not_the_owner(order, known.member_id)
    if not fresh:
        return await _duplicate(services, order, member_id)
    if outcome.upgraded or told:
        services.pushes.wake()
    services.metrics.points_issued.labels("order").inc(outcome.points)
    return outcome


async def _credit(
    services: Services, session: AsyncSession, order: OrderIn, member_id: int
) -> OrderOutcome:
    rules, now = services.rules, services.clock.now()
    held = await lock_member(session, member_id)  # its tier gives the multiplier
    # One floor over the exact product (SPEC): 99.90 × 1.2 is 119, not floor(99.90) × 1.2 = 118.
    multiplier = Decimal(str(rules.tier(held.tier).multiplier))
    points = _floor(order.amount * rules.points.per_currency_unit * multiplier)
    today = local_day(now, services.settings.tz)
    if rules.rewards.member_day_orders and rules.rewards.is_member_day(today):
        points *= rules.rewards.member_day_multiplier
    growth = _floor(order.amount * rules.growth.per_currency_unit)
    bound = rules.limits.max_balance
    if held.points + points > bound or held.growth + growth > bound:
        raise OrderInvalid(
            "amount", f"amount would take the member's points or growth past the limit of {bound}"
        )
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
    if change.upgraded:
        # The member is not in a conversation: the outbox tells them in their app.
        await services.pushes.to_member(
            session,
            member_id,
            "tier-change",
            f"tier-up:order:{order.order_id}",
            lambda t: Reply(upgrade_text(t, rules, change.new)),
        )
    return OrderOutcome(
        order.order_id, member_id, "credited", points, growth, change.new, upgraded=change.upgraded
    )


async def _refunded(services: Services, order: OrderIn, member_id: int) -> OrderOutcome:
    now = services.clock.now()
    refund_id = order.refund_id or orders.WHOLE
    async with services.db.transaction() as session:
        known = await orders.get(session, order.order_id)
        if known is None:
            new = orders.NewOrder(order.order_id, member_id, order.amount, order.currency)
            if await orders.insert_refunded_unknown(session, new, refund_id, now):
                tier = (await lock_member(session, member_id)).tier
                return OrderOutcome(
                    order.order_id, member_id, "refund_recorded", 0, 0, tier, order.amount
                )
            # Its paid order committed while this insert waited on it (PostgreSQL): a fresh
            # statement sees that order.
            known = await orders.get(session, order.order_id)
            assert known is not None
        if known.member_id != member_id:
            raise _not_the_owner(order, known.member_id)
        return await _refund(services, session, order, member_id)


async def _refund(
    services: Services, session: AsyncSession, order: OrderIn, member_id: int
) -> OrderOutcome:
    """One refund of a known order, under the member's lock, then the order's."""
    held = await lock_member(session, member_id)
    paid = await orders.get(session, order.order_id, lock=True)
    assert paid is not None
    refund_id = order.refund_id or orders.WHOLE
    earlier = await orders.refund_of(session, order.order_id, refund_id)
    if earlier is not None:
        if earlier.amount != order.amount:
            raise OrderConflict(
                f"refund {refund_id or '(whole order)'} of order {order.order_id} was "
                f"{earlier.amount}, not {order.amount}",
                refund_id=refund_id,
                amount=str(earlier.amount),
            )
        return OrderOutcome(
            order.order_id, member_id, "duplicate", 0, 0, held.tier, paid.refunded_amount
        )
    _check_refund(paid, order)
    return await _take_back(services, session, order, paid)


def _check_refund(paid: Order, order: OrderIn) -> None:
    left = paid.amount - paid.refunded_amount
    if order.currency != paid.currency:
        raise OrderInvalid("currency", f"currency must be {paid.currency}, the order's")
    if order.refund_id is None and order.amount < paid.amount:
        raise OrderInvalid(
            "refund_id",
            f"refund_id is required for a partial refund ({order.amount} of {paid.amount})",
        )
    if order.amount > left:
        raise OrderConflict(
            f"refund of {order.amount} exceeds what is left to refund of order "
            f"{order.order_id} ({left} of {paid.amount})",
            field="amount",
            refundable=str(left),
        )


def _share(paid: Order, amount: Decimal) -> tuple[int, int]:
    """Points and growth this refund takes back: the floor of the refunded share, less what
    earlier refunds took; the refund reaching the whole amount takes back all that is left."""
    refunded = paid.refunded_amount + amount
    if refunded >= paid.amount:
        return paid.points - paid.points_reversed, paid.growth - paid.growth_reversed
    whole, part = _cents(paid.amount), _cents(refunded)
    return (
        paid.points * part // whole - paid.points_reversed,
        paid.growth * part // whole - paid.growth_reversed,
    )


def ledger_key(order_id: str, refund_id: str) -> str:
    """The refund's ledger key; a whole-order refund keeps the key it always had."""
    if refund_id == orders.WHOLE:
        return f"refund:{order_id}"
    return f"part-refund:{len(order_id)}:{order_id}:{refund_id}"


async def _take_back(
    services: Services, session: AsyncSession, order: OrderIn, paid: Order
) -> OrderOutcome:
    now = services.clock.now()
    refund_id = order.refund_id or orders.WHOLE
    points, growth = _share(paid, order.amount)
    moved = await ledger.reverse(
        session,
        paid.member_id,
        points,
        "refund",
        ledger_key(order.order_id, refund_id),
        now,
        lot_key=f"order:{order.order_id}",
    )
    change = await apply_growth(session, services.rules, paid.member_id, -growth)
    await orders.add_refund(session, order.order_id, refund_id, order.amount, points, growth, now)
    after = await orders.record_refund(session, paid, order.amount, points, growth, now)
    return OrderOutcome(
        order.order_id,
        paid.member_id,
        "reversed",
        moved.amount,
        -growth,
        change.new,
        after.refunded_amount,
    )


async def _duplicate(services: Services, order: OrderIn, member_id: int) -> OrderOutcome:
    async with services.db.reader() as session:
        member = await members.get(session, member_id)
    tier = member.tier if member else "bronze"
    return OrderOutcome(order.order_id, member_id, "duplicate", 0, 0, tier)
