"""Check-ins of the period: how many, by how many members, and per local day."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Checkin
from storage.stats.window import Window


async def per_day(session: AsyncSession, window: Window) -> dict[date, int]:
    """Check-ins per local day of the period (days without any left out)."""
    in_period = (Checkin.day >= window.first_day, Checkin.day <= window.today)
    stmt = select(Checkin.day, func.count()).where(*in_period).group_by(Checkin.day)
    return {day: int(n) for day, n in await session.execute(stmt)}


def summary(window: Window, days: dict[date, int], members: int) -> dict[str, Any]:
    """`members`: how many members checked in, which the benefits' per-tier count of the
    period's check-in members gives (storage/stats/members.py: each check-in's member is a
    row of members, with one tier), so the check-ins are not grouped by member twice."""
    return {
        "total": sum(days.values()),
        "members": members,
        # Every day of the period, quiet days as 0, so a chart's x axis is the calendar.
        "per_day": [
            {"day": day.isoformat(), "count": days.get(day, 0)} for day in window.day_list()
        ],
    }
