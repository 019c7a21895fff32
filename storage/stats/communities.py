"""Communities: members now, joined and left in the period, one row per community."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Community, CommunityMember
from storage.stats.window import Window


def _count_if(cond: Any) -> Any:
    return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)


async def summary(session: AsyncSession, window: Window) -> list[dict[str, Any]]:
    cm = CommunityMember
    in_period = and_(cm.joined_at >= window.start, cm.joined_at <= window.now)
    left = and_(cm.status == "left", cm.left_at >= window.start, cm.left_at <= window.now)
    # Counted per community first: `names` is JSON, which PostgreSQL cannot GROUP BY.
    counted = (
        select(
            cm.community_id,
            _count_if(cm.status == "joined").label("members"),
            _count_if(in_period).label("joined"),
            _count_if(left).label("left"),
        )
        .group_by(cm.community_id)
        .subquery()
    )
    zero = func.coalesce
    stmt = (
        select(
            Community.slug,
            Community.names,
            Community.min_tier,
            Community.active,
            zero(counted.c.members, 0),
            zero(counted.c.joined, 0),
            zero(counted.c.left, 0),
        )
        .outerjoin(counted, counted.c.community_id == Community.id)
        .order_by(Community.slug)
    )
    return [
        {
            "slug": slug,
            "names": names,
            "min_tier": min_tier,
            "active": bool(active),
            "members": int(members),
            "joined": int(joined),
            "left": int(gone),
        }
        for slug, names, min_tier, active, members, joined, gone in await session.execute(stmt)
    ]
