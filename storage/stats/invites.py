"""Invites of the period: new ones by status now, and rewards decided in the period."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Invite
from storage.stats.window import Window

STATUSES = ("waiting", "review", "rewarded", "rejected", "void")


async def summary(session: AsyncSession, window: Window) -> dict[str, Any]:
    made = (
        select(Invite.status, func.count())
        .where(Invite.created_at >= window.start, Invite.created_at <= window.now)
        .group_by(Invite.status)
    )
    by_status = {status: int(n) for status, n in await session.execute(made)}
    rewarded = select(func.count()).where(
        Invite.status == "rewarded",
        Invite.decided_at >= window.start,
        Invite.decided_at <= window.now,
    )
    return {
        "new": sum(by_status.values()),
        "by_status": {status: by_status.get(status, 0) for status in STATUSES},
        "rewarded": int((await session.execute(rewarded)).scalar_one()),
    }
