"""Shop orders, unique by the shop's order id, and their refunds, unique by refund id, so a
repeated post changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring
from storage.models import Order, OrderRefund

PAID, REFUNDED = "paid", "refunded"
WHOLE = ""  # the refund id of a refund of the whole order sent without one

_orders: Table = Order.__table__  # type: ignore[assignment]
_refunds: Table = OrderRefund.__table__  # type: ignore[assignment]
_INSERT = insert_ignoring(
    _orders,
    (
        "order_id",
        "member_id",
        "amount",
        "currency",
        "status",
        "points",
        "growth",
        "created_at",
        "refunded_at",
        "refunded_amount",
        "points_reversed",
        "growth_reversed",
    ),
    ("order_id",),
    "id",
)
_INSERT_REFUND = insert_ignoring(
    _refunds,
    ("order_id", "refund_id", "amount", "points", "growth", "created_at"),
    ("order_id", "refund_id"),
    "id",
)


@dataclass(frozen=True)
class NewOrder:
    order_id: str
    member_id: int
    amount: Decimal
    currency: str


async def insert_paid(
    session: AsyncSession,
    order_id: str,
    member_id: int,
    amount: Decimal,
    currency: str,
    now: datetime,
) -> bool:
    """Record a paid order; False when the order id is known already (paid or refunded)."""
    order = NewOrder(order_id, member_id, amount, currency)
    return await _insert(session, order, PAID, now, None)


async def insert_refunded_unknown(
    session: AsyncSession, order: NewOrder, refund_id: str, now: datetime
) -> bool:
    """A refund for an order never seen paid: remember it (fully refunded, nothing credited)
    so a late 'paid' credits nothing; False when the order id is known already."""
    if not await _insert(session, order, REFUNDED, now, now):
        return False
    await add_refund(session, order.order_id, refund_id, order.amount, 0, 0, now)
    return True


async def _insert(
    session: AsyncSession,
    order: NewOrder,
    status: str,
    now: datetime,
    refunded_at: datetime | None,
) -> bool:
    values = {
        "order_id": order.order_id,
        "member_id": order.member_id,
        "amount": order.amount,
        "currency": order.currency,
        "status": status,
        "points": 0,
        "growth": 0,
        "created_at": now,
        "refunded_at": refunded_at,
        "refunded_amount": order.amount if status == REFUNDED else Decimal(0),
        "points_reversed": 0,
        "growth_reversed": 0,
    }
    return (await session.execute(_INSERT, values)).scalar_one_or_none() is not None


async def set_credit(session: AsyncSession, order_id: str, points: int, growth: int) -> None:
    await session.execute(
        update(Order).where(Order.order_id == order_id).values(points=points, growth=growth)
    )


async def get(session: AsyncSession, order_id: str, *, lock: bool = False) -> Order | None:
    """The order; `lock` holds its row for the rest of the transaction (refunds)."""
    stmt = select(Order).where(Order.order_id == order_id)
    if lock:  # and read afresh: the session may hold the row as it was before the lock
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def refund_of(session: AsyncSession, order_id: str, refund_id: str) -> OrderRefund | None:
    stmt = select(OrderRefund).where(
        OrderRefund.order_id == order_id, OrderRefund.refund_id == refund_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_refund(
    session: AsyncSession,
    order_id: str,
    refund_id: str,
    amount: Decimal,
    points: int,
    growth: int,
    now: datetime,
) -> bool:
    """Record one refund; False when that refund id of the order is known already."""
    values = {
        "order_id": order_id,
        "refund_id": refund_id,
        "amount": amount,
        "points": points,
        "growth": growth,
        "created_at": now,
    }
    return (await session.execute(_INSERT_REFUND, values)).scalar_one_or_none() is not None


async def record_refund(
    session: AsyncSession, order: Order, amount: Decimal, points: int, growth: int, now: datetime
) -> Order:
    """Add a refund's amount and the points and growth it took back to the order's totals;
    the order is `refunded` once the whole amount is."""
    refunded = order.refunded_amount + amount
    stmt = (
        update(Order)
        .where(Order.id == order.id)
        .values(
            refunded_amount=refunded,
            points_reversed=Order.points_reversed + points,
            growth_reversed=Order.growth_reversed + growth,
            status=REFUNDED if refunded >= order.amount else PAID,
            refunded_at=now,
        )
        .returning(Order)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()
