"""The scheduler: periods, each job once per period across processes, hooks, `jobs run`."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime

import pytest

from bot.core.messages import Reply
from bot.jobs import schedule
from bot.jobs.env import JobEnv
from bot.jobs.pushes import push_to_chat
from handlers.nudges import TEXTS
from storage import jobs
from storage.db import Database
from storage.outbox import POST, Target
from tests.conftest import SHANGHAI, START

TICKED = {
    "expiry",
    "stats",
    "reminders",
    "birthdays",
    "dormant",
    "tier-review",
    "deadlines",
    "flashsales",
}


async def runs(env, job=None):
    async with env.services.db.reader() as session:
        return await jobs.recent(session, job, limit=100)


@pytest.mark.parametrize(
    ("local", "job", "key"),
    [
        (datetime(2026, 3, 10, 8, 59, tzinfo=SHANGHAI), "reminders", "2026-03-09"),
        (datetime(2026, 3, 10, 9, 0, tzinfo=SHANGHAI), "reminders", "2026-03-10"),
        (datetime(2026, 3, 10, 9, 0, tzinfo=SHANGHAI), "expiry", "2026-03-10T01"),
        (datetime(2026, 3, 10, 9, 5, 30, tzinfo=SHANGHAI), "deadlines", "2026-03-10T01:05"),
    ],
)
async def test_periods_are_utc_minutes_and_hours_or_local_days_from_the_daily_hour(
    env, clock, local, job, key
):
    clock.set(local)
    assert schedule.period(schedule.JOBS[job], env) == key


async def test_the_spec_lists_every_job():
    assert set(schedule.JOBS) == TICKED | {"outbox"}


async def test_two_processes_ticking_at_once_run_each_job_once(env, core, backend):
    other_db = Database(backend[0])
    try:
        other = JobEnv(dataclasses.replace(core.services, db=other_db), env.senders, TEXTS)
        done = await asyncio.gather(schedule.tick(env), schedule.tick(other))
    finally:
        await other_db.close()

    assert set(done[0]) | set(done[1]) == TICKED
    assert set(done[0]).isdisjoint(done[1])
    assert sorted(r.job for r in await runs(env)) == sorted(TICKED)
    assert all(r.finished_at == START and r.error is None for r in await runs(env))


async def test_a_job_runs_again_in_its_next_period_only(env, clock):
    await schedule.tick(env)
    clock.advance(minutes=1)

    assert set(await schedule.tick(env)) == {"deadlines", "flashsales"}
    clock.advance(hours=1)
    assert set(await schedule.tick(env)) == {"deadlines", "flashsales", "expiry", "stats"}
    clock.advance(days=1)
    assert set(await schedule.tick(env)) == TICKED


async def test_hooks_attached_to_a_job_run_with_it(env):
    seen = []

    async def check_deadlines(services):
        seen.append(services is env.services)
        return 2

    env.hooks.add("deadlines", check_deadlines)

    done = await schedule.tick(env)
    await schedule.tick(env)

    assert (done["deadlines"], done["flashsales"], seen) == (2, 0, [True])


async def test_a_failing_job_is_recorded_and_the_others_still_run(env):
    async def broken(services):
        raise LookupError("boom")

    env.hooks.add("flashsales", broken)

    done = await schedule.tick(env)

    assert "flashsales" not in done and "deadlines" in done
    [run] = await runs(env, "flashsales")
    assert (run.finished_at, run.error) == (None, "HookFailed")


async def test_one_failing_hook_does_not_stop_the_others_of_its_job(env):
    seen = []

    async def broken(services):
        raise LookupError("boom")

    async def expire_vouchers(services):
        seen.append("ran")
        return 1

    env.hooks.add("deadlines", broken)
    env.hooks.add("deadlines", expire_vouchers)

    done = await schedule.tick(env)

    assert seen == ["ran"]
    assert "deadlines" not in done  # recorded as failed, naming the hook that failed
    [run] = await runs(env, "deadlines")
    assert run.error == "HookFailed"


async def test_jobs_run_runs_now_even_when_the_period_already_ran(env, clock):
    await schedule.tick(env)
    clock.advance(seconds=1)

    assert await schedule.run_job(env, "reminders") == 0

    manual = [r for r in await runs(env, "reminders") if r.period.startswith("manual-")]
    assert [(r.period, r.done) for r in manual] == [("manual-20260310T020001000000", 0)]


async def test_jobs_run_outbox_sends_what_is_due(env, core, telegram):
    async with core.services.db.transaction() as session:
        target = Target("telegram", "-100", None, POST)
        await push_to_chat(session, core.services, target, "flashsale-announce", "k", Reply("hi"))

    assert await schedule.run_job(env, "outbox") == 1
    assert len(telegram.calls) == 1


async def test_jobs_run_names_an_unknown_job(env):
    with pytest.raises(KeyError):
        await schedule.run_job(env, "nope")


async def test_a_crashed_runs_period_is_taken_over_once_stale(env, clock):
    async with env.services.db.transaction() as session:
        await jobs.claim(session, "dormant", "2026-03-10", "dead:1", clock.now(), schedule.STALE)

    assert "dormant" not in await schedule.tick(env)
    clock.advance(seconds=schedule.STALE.total_seconds())
    assert "dormant" in await schedule.tick(env)
    clock.advance(minutes=1)
    assert "dormant" not in await schedule.tick(env)
