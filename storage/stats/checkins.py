"""Check-ins of the period: how many, by how many members, and per local day."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Checkin
from storage.stats.window import Window


async def summary(session: AsyncSession, window: Window) -> dict[str, Any]:
    in_period = (Checkin.day >= window.first_day, Checkin.day <= window.today)
    per_day_stmt = select(Checkin.day, func.count()).where(*in_period).group_by(Checkin.day)
    per_day = {day: int(n) for day, n in await session.execute(per_day_stmt)}
    members = (
        await session.execute(
            select(func.count(func.distinct(Checkin.member_id))).where(*in_period)
        )
    ).scalar_one()
    return {
        "total": sum(per_day.values()),
        "members": int(members),
        # Every day of the period, quiet days as 0, so a chart's x axis is the calendar.
        "per_day": [
            {"day": day.isoformat(), "count": per_day.get(day, 0)} for day in window.day_list()
        ],
    }
