"""the job committing while one /api/stats part is half-way through.
On PostgreSQL the report's parts share one REPEATABLE READ snapshot (storage/stats/__init__.py
`report`), so the commit is invisible; on SQLite the one reader runs each statement on its own
snapshot, so a part that reads `through`, the roll-up and the live entries in separate
statements can mix two states of the roll-up."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, select

from bot.admin import stats as admin_stats
from storage import ledger
from storage import stats as stats_pkg
from storage.models import LedgerEntry
from storage.stats import members as member_stats
from storage.stats import points, rollup
from tests.conftest import START
from tests.stats_seed import seed


async def _roll(core: Any) -> int:
    async with core.services.db.transaction() as s:
        return await rollup.advance(s, core.services.clock.now())


async def test_points_partial_hour_double_counted_when_job_commits_mid_part(
    core, clock, monkeypatch
):
    ids = await seed(core.services.db)
    clock.advance(minutes=35)  # START is 02:00 UTC: through -> 02:20 (mid-hour)
    await _roll(core)
    async with core.services.db.transaction() as s:
        s.add(
            LedgerEntry(
                member_id=ids["bob"],
                kind="earn",
                amount=1000,
                reason="earn",
                idempotency_key="race:1",
                created_at=START + timedelta(minutes=25),
            )
        )
    clock.advance(minutes=20)  # the job may now take through to 02:40 (same UTC hour)
    window = admin_stats.window(core.services, 30)
    orig = rollup.reach_for
    fired = []

    async def racing(session, w):
        reach = await orig(session, w)
        if not fired:
            fired.append(await _roll(core))  # the hourly job commits right now
        return reach

    monkeypatch.setattr(rollup, "reach_for", racing)
    async with stats_pkg.report(core.services.db) as sessions:
        got = await points.totals(sessions[0], window)
    monkeypatch.setattr(rollup, "reach_for", orig)
    assert fired == [2]
    async with core.services.db.reader() as s:
        created = LedgerEntry.created_at
        stmt = select(func.sum(LedgerEntry.amount)).where(
            and_(LedgerEntry.kind == "earn", created >= window.start, created <= window.now)
        )
        direct = int((await s.execute(stmt)).scalar_one())
    assert got["earned"] == direct  # SQLite: direct + 1000 (02:25 entry in the hour row AND live)


class _Racing:
    """A session that lets the job commit right after the n-th statement."""

    def __init__(self, inner, after, job):
        self.inner, self.after, self.job, self.n = inner, after, job, 0

    def get_bind(self):
        return self.inner.get_bind()

    async def execute(self, *a, **k):
        result = await self.inner.execute(*a, **k)
        self.n += 1
        if self.n == self.after:
            result = result.freeze()  # SQLite: read the rows before the job writes
            await self.job()
            return result()
        return result


async def test_redeemed_member_lost_when_job_commits_between_rolled_and_live(core, clock):
    ids = await seed(core.services.db)
    await _roll(core)
    async with core.services.db.transaction() as s:
        now = clock.now()
        await ledger.earn(s, ids["alice"], 5, "gift", "race:earn", now, expiry_days=365)
        await ledger.spend(s, ids["alice"], 5, "voucher", "race:spend", now)
    clock.advance(minutes=30)
    window = admin_stats.window(core.services, 30)
    async with stats_pkg.report(core.services.db) as sessions:
        direct = await member_stats.direct_benefit(sessions[0], window, "redeemed")
        # statements: through (1), the roll-up's range (2) | job commits | the live spends (3)
        racing = _Racing(sessions[0], 2, lambda: _roll(core))
        got = await member_stats.benefit(racing, window, "redeemed")
    assert got == direct  # SQLite: alice's tier one short (she is in neither half)
