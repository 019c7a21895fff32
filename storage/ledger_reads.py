"""Reads of the points ledger: balances, recent entries, lots due or expiring soon.

Kept apart from storage/ledger.py, the only code that moves points; these never write.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LedgerEntry, Member


async def members_with_due_lots(
    session: AsyncSession, now: datetime, limit: int = 500
) -> list[int]:
    """Members holding lots past their date, for the periodic expiry sweep."""
    stmt = (
        select(LedgerEntry.member_id)
        .where(LedgerEntry.remaining > 0, LedgerEntry.expires_at <= now)
        .distinct()
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def expiring_within(session: AsyncSession, member_id: int, now: datetime, days: int) -> int:
    """Points that will expire in the next `days` days (the reminder window)."""
    stmt = select(func.coalesce(func.sum(LedgerEntry.remaining), 0)).where(
        LedgerEntry.member_id == member_id,
        LedgerEntry.remaining > 0,
        LedgerEntry.expires_at > now,
        LedgerEntry.expires_at <= now + timedelta(days=days),
    )
    return int((await session.execute(stmt)).scalar_one())


async def balance_of(session: AsyncSession, member_id: int) -> int:
    stmt = select(Member.points).where(Member.id == member_id)
    return int((await session.execute(stmt)).scalar_one())


async def ledger_sum(session: AsyncSession, member_id: int) -> int:
    """The balance recomputed from the entries, for checks and tests."""
    stmt = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.member_id == member_id
    )
    return int((await session.execute(stmt)).scalar_one())


async def recent(session: AsyncSession, member_id: int, limit: int = 10) -> list[LedgerEntry]:
    stmt = (
        select(LedgerEntry)
        .where(LedgerEntry.member_id == member_id)
        .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def entry(session: AsyncSession, key: str) -> LedgerEntry | None:
    """The entry written under an idempotency key, if any (what a repeated key had done)."""
    stmt = select(LedgerEntry).where(LedgerEntry.idempotency_key == key)
    return (await session.execute(stmt)).scalar_one_or_none()
