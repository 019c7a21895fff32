"""The operators' figures (GET /api/stats, the dashboard), each from SQL aggregates.

One module per subject; `collect` puts them together under the SPEC's keys. Nothing here
loops over members: every figure is a COUNT/SUM/GROUP BY the database does.

On PostgreSQL the figures' statements run on LANES connections at once (`report`), each a
read-only transaction on the same snapshot (exported by the first, imported by the others),
so they agree with each other as one transaction's would: the figures of a big programme
are a dozen statements of 0.1 to 0.5 s each, which a single connection runs one after the
other while the other cores wait.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database
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

__all__ = ["LANES", "Window", "collect", "read_only_report", "report"]

WORK_MEM = "64MB"
LANES = 4  # connections one report uses at once on PostgreSQL (each may add parallel workers)
_SNAPSHOT = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")  # pg_export_snapshot()'s shape

Part = Callable[[AsyncSession], Awaitable[Any]]


async def read_only_report(session: AsyncSession, snapshot: str | None = None) -> str:
    """Make a PostgreSQL transaction a read-only report on one snapshot (REPEATABLE READ:
    every statement sees the same data), whose per-member grouping of a period's entries
    hashes in memory instead of spilling to disk (work_mem, this transaction only). With
    `snapshot` it takes that one (exported by another transaction still open); returns the
    snapshot's id, for the others to import."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
    if snapshot is not None:
        if not _SNAPSHOT.match(snapshot):  # a literal in the statement: nothing but the id
            raise ValueError(f"not a snapshot id: {snapshot!r}")
        await session.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
    await session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    if snapshot is not None:
        return snapshot
    return str((await session.execute(text("SELECT pg_export_snapshot()"))).scalar_one())


@asynccontextmanager
async def report(db: Database, lanes: int = LANES) -> AsyncIterator[list[AsyncSession]]:
    """Sessions to read the figures on: PostgreSQL, `lanes` read-only transactions on one
    snapshot; SQLite, one reader (a snapshot already; a transaction there would take the
    write lock, and its one file gains nothing from more connections)."""
    if db.dialect != "postgresql":
        async with db.reader() as session:
            conn = await session.connection()
            await conn.exec_driver_sql("BEGIN")  # deferred: a read snapshot, no write lock
            try:
                yield [session]
            finally:
                await conn.exec_driver_sql("COMMIT")
        return
    async with AsyncExitStack() as stack:
        lead = await stack.enter_async_context(db.transaction())
        snapshot = await read_only_report(lead)
        sessions = [lead]
        for _ in range(lanes - 1):
            session = await stack.enter_async_context(db.transaction())
            await read_only_report(session, snapshot)
            sessions.append(session)
        yield sessions


async def _run(parts: dict[str, Part], sessions: list[AsyncSession]) -> dict[str, Any]:
    """Each part once, on whichever session is free next (parts in the order given: the
    slowest first, so the last to finish is a quick one). A failure cancels the rest."""
    queue = list(parts.items())
    done: dict[str, Any] = {}

    async def lane(session: AsyncSession) -> None:
        while queue:
            name, part = queue.pop(0)
            done[name] = await part(session)

    async with asyncio.TaskGroup() as group:
        for session in sessions:
            group.create_task(lane(session))
    return done


def _parts(window: Window, tiers: tuple[str, ...]) -> dict[str, Part]:
    """Every statement group of the figures, independent of each other, slowest first (as
    measured by bench/stats.py on a million members, with the per-member roll-up)."""
    benefit = {
        name: partial(members.benefit, window=window, name=name) for name in members.BENEFITS
    }
    parts: dict[str, Part] = {
        "orders": lambda s: orders.fetch(s, window),
        "by_channel": members.by_channel,
        "activity": lambda s: activity.rolled(s, window),
        "benefit:checked_in": benefit["checked_in"],
        "counted": lambda s: members.counted(s, window, tiers),
        "late": lambda s: activity.late(s, window),
    }
    for ago in activity.COHORTS:
        parts[f"retention:{ago}"] = partial(activity.cohort, window=window, ago=ago)
    parts["checkins"] = lambda s: checkins.per_day(s, window)
    parts["benefit:redeemed"] = benefit["redeemed"]
    parts["benefit:in_community"] = benefit["in_community"]
    parts["points"] = lambda s: points.totals(s, window)
    parts["invites"] = lambda s: invites.summary(s, window)
    parts["communities"] = lambda s: communities.summary(s, window)
    parts["flash_sales"] = lambda s: flash_sales.summary(s, window)
    parts["redemptions"] = lambda s: redemptions.summary(s, window, tiers)
    parts["campaigns"] = lambda s: campaigns.summary(s, window)
    parts["complaints"] = lambda s: complaints.summary(s, window)
    return parts


async def collect(
    sessions: list[AsyncSession], window: Window, tiers: tuple[str, ...]
) -> dict[str, Any]:
    """Every figure of the period, as JSON-ready values, read on `sessions` (see `report`)."""
    got = await _run(_parts(window, tiers), sessions)
    counted: members.Counted = got["counted"]
    by_tier = counted.by_tier
    spent = {**got["points"], "outstanding": counted.outstanding}
    benefits = {name: got[f"benefit:{name}"] for name in members.BENEFITS}
    return {
        "period": window.json(),
        "members": {
            **counted.counts,
            **activity.add_late(got["activity"], got["late"]),
            "by_tier": by_tier,
            "by_channel": got["by_channel"],
            "retention": {
                str(ago): activity.shape_cohort(window, ago, got[f"retention:{ago}"], got["late"])
                for ago in activity.COHORTS
            },
        },
        "checkins": checkins.summary(window, got["checkins"], sum(benefits["checked_in"].values())),
        "points": spent,
        "invites": got["invites"],
        "communities": got["communities"],
        "flash_sales": got["flash_sales"],
        # every spend in the ledger (vouchers, draws, make-ups), then the vouchers
        "redemptions": {"points_spent": spent["spent"], **got["redemptions"]},
        "benefits": {"by_tier": members.benefits(by_tier, benefits)},
        "campaigns": got["campaigns"],
        "complaints": got["complaints"],
        "orders": orders.shape(got["orders"], by_tier),
    }
