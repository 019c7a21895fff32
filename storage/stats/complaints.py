"""Complaints of the period: filed, resolved, still open, the first-response SLA (met and
breached), the median first response in hours, and the members' average score.

The SLA is judged on the tickets filed in the period: met when the first response came by
`first_response_due` (moved later while the ticket waited on the member), breached when it
came later or has not come and the deadline passed. The median uses window functions, which
both SQLite and PostgreSQL have, so it stays one statement on either.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Ticket
from storage.stats.window import Window, rate
from storage.tickets import ACTIVE


def _hours(later: Any, earlier: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier) / 3600.0
    return (func.julianday(later) - func.julianday(earlier)) * 24.0


def _tally(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def _median_hours(session: AsyncSession, filed: ColumnElement[bool]) -> float | None:
    hours = _hours(Ticket.first_response_at, Ticket.created_at, session.get_bind().dialect.name)
    ranked = (
        select(
            hours.label("h"),
            func.row_number().over(order_by=hours).label("rn"),
            func.count().over().label("n"),
        )
        .where(filed, Ticket.first_response_at.is_not(None))
        .subquery()
    )
    # The middle row, or the mean of the two middle rows (floor division: `//`).
    middle = ranked.c.rn.between((ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2)
    value = (await session.execute(select(func.avg(ranked.c.h)).where(middle))).scalar_one()
    return None if value is None else round(float(value), 2)


async def summary(session: AsyncSession, window: Window) -> dict[str, Any]:
    filed = and_(Ticket.created_at >= window.start, Ticket.created_at <= window.now)
    resolved = and_(Ticket.resolved_at >= window.start, Ticket.resolved_at <= window.now)
    answered = Ticket.first_response_at.is_not(None)
    met = and_(answered, Ticket.first_response_at <= Ticket.first_response_due)
    breached = (answered & (Ticket.first_response_at > Ticket.first_response_due)) | (
        ~answered & (Ticket.first_response_due < window.now)
    )
    stmt = select(
        _tally(filed),
        _tally(resolved),
        _tally(Ticket.state.in_(ACTIVE)),
        _tally(filed & met),
        _tally(filed & breached),
        func.avg(case((resolved & Ticket.score.is_not(None), Ticket.score))),
    )
    row = (await session.execute(stmt)).one()
    count, done, still_open, in_time, late = (int(n) for n in row[:5])
    score = row[5]
    return {
        "filed": count,
        "resolved": done,
        "open": still_open,  # now, whenever filed
        "first_response_met": in_time,
        "breaches": late,
        "first_response_sla_met": rate(in_time, in_time + late),
        "first_response_median_hours": await _median_hours(session, filed),
        "average_score": None if score is None else round(float(score), 2),
    }
