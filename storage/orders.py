"""Shop orders, unique by the shop's order id so a repeated post changes nothing."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring
from storage.models import Order

_INSERT = insert_ignoring(
    Order.__table__,  # type: ignore[arg-type]
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
    ),
    ("order_id",),
    "id",
)


async def insert_paid(
    session: AsyncSession,
    order_id: str,
    member_id: int,
    amount: Decimal,
    currency: str,
    now: datetime,
) -> bool:
    """Record a paid order; False when the order id is known already (paid or refunded)."""
    return await _insert(session, order_id, member_id, amount, currency, "paid", now, None)


async def set_credit(session: AsyncSession, order_id: str, points: int, growth: int) -> None:
    await session.execute(
        update(Order).where(Order.order_id == order_id).values(points=points, growth=growth)
    )


async def mark_refunded(session: AsyncSession, order_id: str, now: datetime) -> Order | None:
    """Flip paid → refunded atomically; None when it was not a paid order (repeat or unknown)."""
    stmt = (
        update(Order)
        .where(Order.order_id == order_id, Order.status == "paid")
        .values(status="refunded", refunded_at=now)
        .returning(Order)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def insert_refunded_unknown(
    session: AsyncSession,
    order_id: str,
    member_id: int,
    amount: Decimal,
    currency: str,
    now: datetime,
) -> bool:
    """A refund for an order never seen paid: remember it so a late 'paid' credits nothing."""
    return await _insert(session, order_id, member_id, amount, currency, "refunded", now, now)


async def _insert(
    session: AsyncSession,
    order_id: str,
    member_id: int,
    amount: Decimal,
    currency: str,
    status: str,
    now: datetime,
    refunded_at: datetime | None,
) -> bool:
    values = {
        "order_id": order_id,
        "member_id": member_id,
        "amount": amount,
        "currency": currency,
        "status": status,
        "points": 0,
        "growth": 0,
        "created_at": now,
        "refunded_at": refunded_at,
    }
    return (await session.execute(_INSERT, values)).scalar_one_or_none() is not None


async def get(session: AsyncSession, order_id: str) -> Order | None:
    return (
        await session.execute(select(Order).where(Order.order_id == order_id))
    ).scalar_one_or_none()
