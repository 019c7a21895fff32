"""Redemptions of the period: vouchers issued, used, expired and cancelled (each by the
moment it happened), the points spent, and vouchers issued and used by the member's tier."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, Voucher
from storage.stats.window import Window


def _within(column: Any, window: Window) -> ColumnElement[bool]:
    return and_(column >= window.start, column <= window.now)


def _tally(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def summary(session: AsyncSession, window: Window, tiers: tuple[str, ...]) -> dict[str, Any]:
    """Vouchers by when they moved, in total and by tier; `collect` puts the points spent
    (the ledger's, storage/stats/points.py) in front as `points_spent`."""
    issued = _within(Voucher.issued_at, window)
    used = _within(Voucher.used_at, window)
    cancelled = _within(Voucher.cancelled_at, window)
    expired = and_(Voucher.state == "expired", _within(Voucher.expires_at, window))
    moved = issued | used | cancelled | expired
    stmt = (
        select(
            Member.tier,
            _tally(issued),
            _tally(used),
            _tally(cancelled),
            _tally(expired),
            func.coalesce(func.sum(case((issued, Voucher.cost), else_=0)), 0),
        )
        .join(Member, Member.id == Voucher.member_id)
        .where(moved)
        .group_by(Member.tier)
    )
    rows = {tier: [int(n) for n in rest] for tier, *rest in await session.execute(stmt)}
    keys = ("issued", "used", "cancelled", "expired", "cost")
    by_tier = {
        tier: dict(zip(keys, rows.get(tier, [0] * len(keys)), strict=True))
        for tier in dict.fromkeys([*tiers, *rows])
    }
    totals = {key: sum(v[key] for v in by_tier.values()) for key in keys}
    return {
        "vouchers": {
            "issued": totals["issued"],
            "used": totals["used"],
            "cancelled": totals["cancelled"],
            "expired": totals["expired"],
            "points": totals["cost"],  # what the vouchers issued in the period cost
        },
        "by_tier": {
            tier: {"issued": v["issued"], "used": v["used"]} for tier, v in by_tier.items()
        },
    }
