"""Flash sales of the period: sales that started, units offered and claimed (sell-through),
sales that sold out, and how many members claimed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.flashsales import CANCELLED, ENDED, LIVE
from storage.models import FlashClaim, FlashSale
from storage.stats.window import Window, rate


async def summary(session: AsyncSession, window: Window) -> dict[str, Any]:
    # A sale counts in the period it started; scheduled ones and those cancelled before their
    # start never offered anything (one cancelled while live did, and its claims stay valid).
    # Its units claimed count with it, whenever they were claimed.
    went_live = or_(
        FlashSale.state.in_((LIVE, ENDED)),
        and_(
            FlashSale.state == CANCELLED,
            or_(FlashSale.ended_at > FlashSale.starts_at, FlashSale.claimed > 0),
        ),
    )
    started = (FlashSale.starts_at >= window.start, FlashSale.starts_at <= window.now, went_live)
    totals = select(
        func.count(),
        func.coalesce(func.sum(FlashSale.stock), 0),
        func.coalesce(func.sum(FlashSale.claimed), 0),
        func.coalesce(func.sum(case((FlashSale.sold_out_at.is_not(None), 1), else_=0)), 0),
    ).where(*started)
    count, stock, claimed, sold_out = (await session.execute(totals)).one()
    claimers = (
        select(
            func.count(func.distinct(FlashClaim.member_id)),
            func.coalesce(func.sum(case((FlashClaim.used_at.is_not(None), 1), else_=0)), 0),
        )
        .join(FlashSale, FlashSale.id == FlashClaim.sale_id)
        .where(*started)
    )
    members, used = (await session.execute(claimers)).one()
    return {
        "started": int(count),
        "sold_out": int(sold_out),
        "stock": int(stock),
        "claimed": int(claimed),
        "sell_through": rate(int(claimed), int(stock)),
        "members": int(members),
        "used": int(used),
    }
