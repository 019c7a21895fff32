"""Deeds the shop reports (reviews, shares): one row per event id, credited within daily caps."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring
from storage.models import EarningEvent, LedgerEntry, Order

_events: Table = EarningEvent.__table__  # type: ignore[assignment]
_INSERT_EVENT = insert_ignoring(
    _events,
    ("event_id", "member_id", "type", "day", "credited", "points", "growth", "created_at"),
    ("event_id",),
    "id",
)


async def get(session: AsyncSession, event_id: str) -> EarningEvent | None:
    stmt = select(EarningEvent).where(EarningEvent.event_id == event_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def record(
    session: AsyncSession, event_id: str, member_id: int, kind: str, day: date, now: datetime
) -> bool:
    """Record the event, uncredited; False if its id was recorded before (a repeat)."""
    params = {
        "event_id": event_id,
        "member_id": member_id,
        "type": kind,
        "day": day,
        "credited": False,
        "points": 0,
        "growth": 0,
        "created_at": now,
    }
    return (await session.execute(_INSERT_EVENT, params)).scalar_one_or_none() is not None


async def credited_on(session: AsyncSession, member_id: int, kind: str, day: date) -> int:
    """Events of the type credited to the member that day (the caller holds the member lock)."""
    stmt = select(func.count()).where(
        EarningEvent.member_id == member_id,
        EarningEvent.type == kind,
        EarningEvent.day == day,
        EarningEvent.credited.is_(True),
    )
    return int((await session.execute(stmt)).scalar_one())


async def mark_credited(session: AsyncSession, event_id: str, points: int, growth: int) -> None:
    await session.execute(
        update(EarningEvent)
        .where(EarningEvent.event_id == event_id)
        .values(credited=True, points=points, growth=growth)
    )


async def counts_on(session: AsyncSession, member_id: int, day: date) -> dict[str, int]:
    """Credited events per type that day, for /tasks."""
    stmt = (
        select(EarningEvent.type, func.count())
        .where(
            EarningEvent.member_id == member_id,
            EarningEvent.day == day,
            EarningEvent.credited.is_(True),
        )
        .group_by(EarningEvent.type)
    )
    return {kind: int(n) for kind, n in (await session.execute(stmt)).all()}


async def has_paid_order(session: AsyncSession, member_id: int) -> bool:
    stmt = select(Order.id).where(
        Order.member_id == member_id, (Order.status == "paid") | (Order.points > 0)
    )
    return (await session.execute(stmt.limit(1))).scalar_one_or_none() is not None


async def task_paid(session: AsyncSession, member_id: int, task: str) -> bool:
    """Whether a one-off task was paid to the member, under either half of linked accounts
    (a merge moves the other half's entries here, keys and all)."""
    stmt = select(LedgerEntry.id).where(
        LedgerEntry.member_id == member_id, LedgerEntry.idempotency_key.like(f"task:{task}:%")
    )
    return (await session.execute(stmt.limit(1))).scalar_one_or_none() is not None
