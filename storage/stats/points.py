"""Points moved in the period, by kind of ledger entry, and what members hold now."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LedgerEntry, Member
from storage.stats.window import Window


async def totals(session: AsyncSession, window: Window) -> dict[str, int]:
    """`earned`, `spent`, `expired`, `reversed` (refunds) as positive numbers; `adjusted` is
    the operators' net correction (signed); `outstanding` the members' balances now."""
    stmt = (
        select(LedgerEntry.kind, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.created_at >= window.start, LedgerEntry.created_at <= window.now)
        .group_by(LedgerEntry.kind)
    )
    by_kind = {kind: int(total or 0) for kind, total in await session.execute(stmt)}
    outstanding = (await session.execute(select(func.sum(Member.points)))).scalar_one()
    return {
        "earned": by_kind.get("earn", 0),
        "spent": -by_kind.get("spend", 0),
        "expired": -by_kind.get("expire", 0),
        "reversed": -by_kind.get("reverse", 0),
        "adjusted": by_kind.get("adjust", 0),
        "outstanding": int(outstanding or 0),
    }
