"""Claims of scheduled jobs on both backends: one run per job and period, however many ask."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from storage import jobs
from tests.conftest import START

STALE = timedelta(minutes=15)


async def claim(db, owner, *, job="reminders", period="2026-03-10", at=START):
    async with db.transaction() as session:
        return await jobs.claim(session, job, period, owner, at, STALE)


async def test_a_period_is_claimed_once_by_twenty_processes_at_once(db):
    won = await asyncio.gather(*(claim(db, f"host:{i}") for i in range(20)))
    assert won.count(True) == 1
    async with db.reader() as session:
        [run] = await jobs.recent(session)
    assert run.owner == f"host:{won.index(True)}"


async def test_each_job_and_period_has_its_own_claim(db):
    assert await claim(db, "a")
    assert await claim(db, "a", period="2026-03-11")
    assert await claim(db, "a", job="dormant")
    assert not await claim(db, "b")


async def test_a_finished_run_is_never_claimed_again(db):
    assert await claim(db, "a")
    async with db.transaction() as session:
        await jobs.finish(session, "reminders", "2026-03-10", START, 3)
    assert not await claim(db, "b", at=START + timedelta(days=2))
    async with db.reader() as session:
        [run] = await jobs.recent(session)
    assert (run.owner, run.finished_at, run.done, run.error) == ("a", START, 3, None)


async def test_an_unfinished_run_is_taken_over_once_stale(db):
    assert await claim(db, "a")
    assert not await claim(db, "b", at=START + STALE - timedelta(seconds=1))
    takeovers = await asyncio.gather(*(claim(db, f"c{i}", at=START + STALE) for i in range(5)))
    assert takeovers.count(True) == 1


async def test_a_failed_run_keeps_its_error_and_is_retried_once_stale(db):
    assert await claim(db, "a")
    async with db.transaction() as session:
        await jobs.failed(session, "reminders", "2026-03-10", "OperationalError")
    async with db.reader() as session:
        [run] = await jobs.recent(session)
    assert (run.finished_at, run.error) == (None, "OperationalError")
    assert await claim(db, "b", at=START + STALE)
