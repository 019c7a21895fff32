"""The activity roll-up gives exactly the ledger's figures, on both backends: rolled up,
with activity after it, after linking accounts and after erasure; the job is idempotent."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from bot.admin import stats
from bot.jobs import schedule
from bot.jobs.env import JobEnv
from handlers.nudges import TEXTS
from storage import ledger, members, privacy
from storage.db import Database
from storage.models import (
    LedgerEntry,
    Member,
    StatsActivity,
    StatsComeback,
    StatsLedgerHour,
    StatsRollup,
)
from storage.stats import rollup
from tests.conftest import START
from tests.stats_seed import ago, seed

PERIODS = (1, 7, 30, 90, 366)
ACTIVITY_KEYS = ("active", "churned", "won_back", "retention")


async def _both(core: Any, days: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(figures with the roll-up, figures from the ledger alone) of the last `days` days."""
    db = core.services.db
    with_rollup = await stats.figures(core.services, days)
    async with db.transaction() as s:
        kept = (await s.execute(select(StatsRollup.through))).scalar_one()
        await s.execute(update(StatsRollup).values(through=None))
    try:
        ledger_only = await stats.figures(core.services, days)
    finally:
        async with db.transaction() as s:
            await s.execute(update(StatsRollup).values(through=kept))
    return with_rollup, ledger_only


async def _same(core: Any) -> dict[int, dict[str, Any]]:
    found = {}
    for days in PERIODS:
        with_rollup, ledger_only = await _both(core, days)
        assert with_rollup == ledger_only, days
        found[days] = with_rollup["members"]
    return found


async def _roll(core: Any) -> int:
    async with core.services.db.transaction() as s:
        return await rollup.advance(s, core.services.clock.now())


async def _reach(core: Any) -> Any:
    async with core.services.db.reader() as s:
        return await rollup.through(s)


async def test_rolled_up_figures_equal_the_ledgers(core):
    await seed(core.services.db)
    before = await stats.figures(core.services, 30)

    assert await schedule.run_job(core.jobs, "stats") > 0

    assert await _reach(core) == START - timedelta(minutes=10)  # 10:00 Shanghai: 01:50 UTC
    got = await _same(core)
    assert got[30] == before["members"]
    assert (got[30]["active"], got[30]["churned"], got[30]["won_back"]) == (3, 1, 1)
    async with core.services.db.reader() as s:
        rows = (await s.execute(select(func.count()).select_from(StatsActivity))).scalar_one()
        spells = (await s.execute(select(func.count()).select_from(StatsComeback))).scalar_one()
    assert rows == 4  # alice, bob, carol, erin: dave only got an adjustment
    assert spells == 8  # every first activity, and each after more than 23 quiet hours


async def test_the_job_is_idempotent_and_once_at_a_time(core, backend):
    await seed(core.services.db)
    other_db = Database(backend[0])
    try:
        other = JobEnv(dataclasses.replace(core.services, db=other_db), core.jobs.senders, TEXTS)
        done = await asyncio.gather(
            schedule.run_job(core.jobs, "stats"), schedule.run_job(other, "stats")
        )
    finally:
        await other_db.close()

    assert sorted(done)[0] == 0 and sorted(done)[1] > 0
    assert await schedule.run_job(core.jobs, "stats") == 0  # nothing new to roll up
    async with core.services.db.reader() as s:
        assert (await s.execute(select(func.count()).select_from(StatsComeback))).scalar_one() == 8
    await _same(core)


async def test_activity_after_the_roll_up_counts_live(core, clock):
    ids = await seed(core.services.db)
    await _roll(core)
    async with core.services.db.transaction() as s:
        now = clock.now()
        # alice (churned) comes back, dave acts for the first time, bob keeps going.
        await ledger.earn(s, ids["alice"], 5, "checkin", "late:1", now, expiry_days=365)
        await ledger.earn(s, ids["dave"], 5, "checkin", "late:2", now, expiry_days=365)
        await ledger.earn(s, ids["bob"], 5, "checkin", "late:3", now, expiry_days=365)

    got = await _same(core)

    assert (got[30]["active"], got[30]["churned"], got[30]["won_back"]) == (5, 0, 1)
    clock.advance(hours=3)  # the job carries on over the new hours
    assert await _roll(core) == 18  # 10-minute steps
    assert await _reach(core) == START + timedelta(hours=2, minutes=50)
    got = await _same(core)
    assert got[30]["active"] == 5


async def test_linking_accounts_moves_the_activity_with_the_entries(core):
    ids = await seed(core.services.db)
    await _roll(core)
    async with core.services.db.transaction() as s:
        await members.merge(s, ids["bob"], ids["alice"])  # alice's history becomes bob's

    got = await _same(core)

    assert (got[30]["churned"], got[30]["won_back"]) == (0, 1)  # alice merged; erin
    async with core.services.db.reader() as s:
        rows = await s.execute(select(StatsActivity.member_id))
        assert sorted(rows.scalars()) == sorted([ids["bob"], ids["carol"], ids["erin"]])


async def test_erasure_keeps_the_rolled_up_figures(core, clock):
    ids = await seed(core.services.db)
    await _roll(core)
    before = await stats.figures(core.services, 30)
    async with core.services.db.transaction() as s:
        await privacy.erase(s, ids["erin"], clock.now())

    after = await stats.figures(core.services, 30)
    before["members"].pop("by_channel")  # erin's account is gone: she has none in an app
    assert after["members"].pop("by_channel") == {"console": 1, "telegram": 2, "wechat": 2}
    assert after == before
    await _same(core)


async def test_a_stalled_roll_up_is_not_used(core, clock):
    """Through before the period's start (the job stopped): the ledger alone answers."""
    ids = await seed(core.services.db)
    await _roll(core)
    clock.advance(days=3)
    async with core.services.db.transaction() as s:
        s.add(
            LedgerEntry(
                member_id=ids["alice"],
                kind="earn",
                amount=1,
                reason="checkin",
                idempotency_key="stalled",
                created_at=ago(-2.5),
            )
        )
        s.add(Member(created_at=ago(-1), invite_code="LATE01", tier="bronze"))

    got = (await stats.figures(core.services, 1))["members"]

    assert got["active"] == 1  # alice, in the last day: read from the ledger alone
    await _same(core)  # longer periods use the roll-up and the three days after it


async def test_the_migration_rolls_up_an_existing_programme(tmp_path):
    """A programme with entries before the roll-up existed: the migration builds it through
    the last closed hour (wall clock), the same rows the job builds."""
    from alembic import command

    from storage.migrate import alembic_config, upgrade

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        # Seeded at today's schema (the models), then taken back to before the roll-up, so
        # later migrations' columns never stand in the seed's way.
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
        await seed(db)
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0012"))
        await upgrade(db)
        async with db.reader() as s:
            reach = await rollup.through(s)
            built = await _rows(s)
        # The migration rolled up through the hour ten minutes ago (the job goes on by steps)
        wall = rollup.target(datetime.now(UTC)).replace(minute=0)
        assert reach in (wall, wall - timedelta(hours=1))  # an hour may turn meanwhile
        async with db.transaction() as s:
            await s.execute(delete(StatsComeback))
            await s.execute(delete(StatsActivity))
            await s.execute(update(StatsRollup).values(through=None))
            assert await rollup.advance(s, reach + rollup.LAG) > 0
        async with db.reader() as s:
            assert await _rows(s) == built
        assert len(built[0]) == 4 and len(built[1]) == 8
    finally:
        await db.close()


async def _rows(s: Any) -> tuple[list[Any], list[Any]]:
    activity = await s.execute(select(StatsActivity).order_by(StatsActivity.member_id))
    spells = await s.execute(select(StatsComeback).order_by(StatsComeback.member_id, "at"))
    return (
        [(a.member_id, a.joined_at, a.last_active_at) for a in activity.scalars()],
        [(c.member_id, c.at, c.quiet_since, c.joined_at) for c in spells.scalars()],
    )


async def test_points_of_part_hours_at_both_ends_come_from_the_ledger(core, clock):
    ids = await seed(core.services.db)
    clock.advance(hours=3, minutes=17)  # the period starts and ends inside hours
    start = clock.now() - timedelta(days=30)
    async with core.services.db.transaction() as s:
        for n, (at, kind, amount) in enumerate(
            [
                (start - timedelta(minutes=1), "earn", 1000),  # just before the period
                (start, "earn", 7),  # its first instant
                (start + timedelta(minutes=30), "spend", -2),  # in its first part hour
                (start + timedelta(minutes=43), "earn", 11),  # the first whole hour
                (clock.now() - timedelta(minutes=5), "adjust", 4),  # after the roll-up
            ]
        ):
            s.add(
                LedgerEntry(
                    member_id=ids["bob"],
                    kind=kind,
                    amount=amount,
                    reason=kind,
                    idempotency_key=f"edge:{n}",
                    created_at=at,
                )
            )
    await _roll(core)  # through START + 3 h: the adjustment is after it

    with_rollup, ledger_only = await _both(core, 30)

    assert with_rollup["points"] == ledger_only["points"]
    assert ledger_only["points"]["earned"] == 115 + 7 + 11
    async with core.services.db.reader() as s:
        hours = (await s.execute(select(func.count()).select_from(StatsLedgerHour))).scalar_one()
    # One row per hour and kind: the seed's 12 entries fill 11 (carol's two earns share one),
    # the period's first part hour 2 (earn, spend), the next hour 1.
    assert hours == 14


async def test_points_when_through_falls_before_the_periods_first_whole_hour(core, clock):
    """`through` moves by 10 minutes: a period starting at 02:15 with the roll-up through
    02:20 reads its first part hour and the rest from the ledger, never the 02:00 row."""
    ids = await seed(core.services.db)
    async with core.services.db.transaction() as s:
        for n, minutes in enumerate((10, 16, 25)):  # before the period, rolled, live
            s.add(
                LedgerEntry(
                    member_id=ids["bob"],
                    kind="earn",
                    amount=10**n,
                    reason="earn",
                    idempotency_key=f"step:{n}",
                    created_at=START + timedelta(minutes=minutes),
                )
            )
    clock.advance(minutes=35)
    await _roll(core)
    assert await _reach(core) == START + timedelta(minutes=20)
    clock.advance(days=1, minutes=-20)  # the period: from 02:15 UTC yesterday

    with_rollup, ledger_only = await _both(core, 1)

    assert with_rollup == ledger_only
    assert ledger_only["points"]["earned"] == 10 + 100
