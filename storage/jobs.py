"""Claims of scheduled jobs on their periods: each (job, period) runs in one process only.

The claim is an INSERT that ignores conflicts, committed before the work starts, so any
number of servers and workers may try at once and exactly one wins. A claim whose process
died before finishing may be taken over once it is `stale` (the work is idempotent by its own
keys, so running it again is safe).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import insert_ignoring, rowcount
from storage.models import JobRun

_runs: Table = JobRun.__table__  # type: ignore[assignment]
_INSERT = insert_ignoring(_runs, ("job", "period", "owner", "claimed_at"), ("job", "period"), "job")


@dataclass(frozen=True)
class Run:
    job: str
    period: str
    owner: str
    claimed_at: datetime
    finished_at: datetime | None
    done: int | None
    error: str | None


async def claim(
    session: AsyncSession, job: str, period: str, owner: str, now: datetime, stale: timedelta
) -> bool:
    """True when this caller may run `job` for `period`: first to ask, or taking over a run
    that never finished and was claimed more than `stale` ago."""
    values = {"job": job, "period": period[:32], "owner": owner[:64], "claimed_at": now}
    if (await session.execute(_INSERT, values)).scalar_one_or_none() is not None:
        return True
    takeover = (
        update(_runs)
        .where(
            _runs.c.job == job,
            _runs.c.period == period[:32],
            _runs.c.finished_at.is_(None),
            _runs.c.claimed_at <= now - stale,
        )
        .values(owner=owner[:64], claimed_at=now, error=None)
    )
    return rowcount(await session.execute(takeover)) == 1


async def finish(session: AsyncSession, job: str, period: str, now: datetime, done: int) -> None:
    """Record a run that ended well, and how many things it did."""
    await session.execute(
        update(_runs)
        .where(_runs.c.job == job, _runs.c.period == period[:32])
        .values(finished_at=now, done=done, error=None)
    )


async def failed(session: AsyncSession, job: str, period: str, error: str) -> None:
    """Record a run that raised; it stays unfinished, so another try takes it once stale."""
    await session.execute(
        update(_runs)
        .where(_runs.c.job == job, _runs.c.period == period[:32])
        .values(error=error[:200])
    )


async def recent(session: AsyncSession, job: str | None = None, limit: int = 20) -> list[Run]:
    """The latest runs, newest first (for operators: what ran when, and what it did)."""
    stmt = select(_runs).order_by(_runs.c.claimed_at.desc()).limit(limit)
    if job is not None:
        stmt = stmt.where(_runs.c.job == job)
    return [Run(**row._mapping) for row in await session.execute(stmt)]
