"""Points moved in the period, by kind of ledger entry, and what members hold now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LedgerEntry, StatsLedgerHour
from storage.stats import rollup
from storage.stats.window import Window


async def totals(session: AsyncSession, window: Window) -> dict[str, int]:
    """`earned`, `spent`, `expired`, `reversed` (refunds) as positive numbers; `adjusted` is
    the operators' net correction (signed). The members' balances now (`outstanding`) are
    summed in the members' one pass (storage/stats/members.py): `collect` adds them."""
    reach = await rollup.reach_for(session, window)
    created = LedgerEntry.created_at
    if reach is None:
        by_kind = await _sums(session, and_(created >= window.start, created <= window.now))
    else:
        # Whole hours from the roll-up; the part hour at the start and what came after it
        # from the ledger: two index-only ranges of an hour at most (one OR of both reads the
        # rows themselves).
        # (`through` moves by 10 minutes: it may fall before the first whole hour.)
        first = min(_next_hour(window.start), reach)
        by_kind = await _sums(session, and_(created >= window.start, created < first))
        for kind, total in (
            await _sums(session, and_(created >= reach, created <= window.now))
        ).items():
            by_kind[kind] = by_kind.get(kind, 0) + total
        hours = (
            select(StatsLedgerHour.kind, func.sum(StatsLedgerHour.amount))
            .where(StatsLedgerHour.hour >= first, StatsLedgerHour.hour < reach)
            .group_by(StatsLedgerHour.kind)
        )
        for kind, total in await session.execute(hours):
            by_kind[kind] = by_kind.get(kind, 0) + int(total or 0)
    return {
        "earned": by_kind.get("earn", 0),
        "spent": -by_kind.get("spend", 0),
        "expired": -by_kind.get("expire", 0),
        "reversed": -by_kind.get("reverse", 0),
        "adjusted": by_kind.get("adjust", 0),
    }


def _next_hour(moment: datetime) -> datetime:
    """The first whole hour at or after `moment` (UTC hours: the roll-up's)."""
    floor = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


async def _sums(session: AsyncSession, where: Any) -> dict[str, int]:
    stmt = select(LedgerEntry.kind, func.sum(LedgerEntry.amount)).where(where)
    return {
        kind: int(total or 0)
        for kind, total in await session.execute(stmt.group_by(LedgerEntry.kind))
    }
