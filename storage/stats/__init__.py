"""The operators' figures (GET /api/stats, the dashboard), each from SQL aggregates.

One module per subject; `collect` puts them together under the SPEC's keys. Nothing here
loops over members: every figure is a COUNT/SUM/GROUP BY the database does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.stats import (
    activity,
    campaigns,
    checkins,
    communities,
    complaints,
    flash_sales,
    invites,
    members,
    orders,
    points,
    redemptions,
)
from storage.stats.window import Window

__all__ = ["Window", "collect", "read_only_report"]

WORK_MEM = "64MB"


async def read_only_report(session: AsyncSession) -> None:
    """Make a PostgreSQL transaction a read-only report whose per-member grouping of a
    period's entries hashes in memory instead of spilling to disk (work_mem, this
    transaction only)."""
    await session.execute(text("SET TRANSACTION READ ONLY"))
    await session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))


async def collect(session: AsyncSession, window: Window, tiers: tuple[str, ...]) -> dict[str, Any]:
    """Every figure of the period, as JSON-ready values."""
    counted = await members.overview(session, window, tiers)
    by_tier = counted.by_tier
    spent = await points.totals(session, window, counted.outstanding)
    return {
        "period": window.json(),
        "members": {
            **counted.counts,
            **await activity.summary(session, window),
            "by_tier": by_tier,
            "by_channel": await members.by_channel(session),
            "retention": await activity.retention(session, window),
        },
        "checkins": await checkins.summary(session, window),
        "points": spent,
        "invites": await invites.summary(session, window),
        "communities": await communities.summary(session, window),
        "flash_sales": await flash_sales.summary(session, window),
        "redemptions": await redemptions.summary(session, window, tiers, spent["spent"]),
        "benefits": {"by_tier": counted.benefits},
        "campaigns": await campaigns.summary(session, window),
        "complaints": await complaints.summary(session, window),
        "orders": await orders.summary(session, window, by_tier),
    }
