"""The scheduled jobs, their periods, and running each once per period across processes.

Every process that runs the scheduler (each `memberbot serve` on the embedded default, each
`memberbot worker`) ticks through the jobs; a job runs when its current period has not been
claimed yet (storage.jobs: one row per job and period), so it runs once however many
processes tick. `run_job` is `memberbot jobs run NAME`: now, once, whatever else runs (the
jobs' own dedupe keys make a second run in one period harmless).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, timedelta

from bot.jobs import birthdays, dormant, expiry, reminders, stats, tier_review
from bot.jobs.env import JobEnv
from storage import jobs

log = logging.getLogger("memberbot.jobs")

JobFn = Callable[[JobEnv], Awaitable[int]]  # returns how many things it did
STALE = timedelta(minutes=15)  # a claimed run not finished by then may be taken over
MINUTE, HOUR, DAY = "minute", "hour", "day"


async def _outbox(env: JobEnv) -> int:
    return await env.sender.drain()


class HookFailed(Exception):
    """Some of a job's hooks failed (named); the others did their work."""


def _name_of(hook: object) -> str:
    return f"{getattr(hook, '__module__', '?')}.{getattr(hook, '__qualname__', '?')}"


def _hooks(name: str) -> JobFn:
    async def run(env: JobEnv) -> int:
        # One feature's failure must not cost the others their minute.
        done, failed = 0, []
        for hook in env.hooks.of(name):
            try:
                done += await hook(env.services)
            except Exception:
                log.exception("job hook failed job=%s hook=%s", name, _name_of(hook))
                failed.append(_name_of(hook))
        if failed:
            raise HookFailed(", ".join(failed))  # the run is recorded as failed, others ran
        return done

    return run


@dataclass(frozen=True)
class Job:
    name: str
    every: str  # minute, hour, day (local, starting at the rules' nudges.daily_hour)
    run: JobFn
    ticked: bool = True  # False: not ticked by the scheduler (the outbox has its own loop)


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("expiry", HOUR, expiry.run),
        Job("stats", HOUR, stats.run),
        Job("reminders", DAY, reminders.run),
        Job("birthdays", DAY, birthdays.run),
        Job("dormant", DAY, dormant.run),
        Job("tier-review", DAY, tier_review.run),
        Job("deadlines", MINUTE, _hooks("deadlines")),
        Job("flashsales", MINUTE, _hooks("flashsales")),
        Job("outbox", MINUTE, _outbox, ticked=False),
    )
}


def period(job: Job, env: JobEnv) -> str:
    """The key of the job's current period: a UTC minute or hour, or a local day that starts
    at the rules' daily hour (so daily nudges go out in the morning, not at midnight)."""
    now = env.services.clock.now()
    if job.every == MINUTE:
        return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    if job.every == HOUR:
        return now.astimezone(UTC).strftime("%Y-%m-%dT%H")
    local = now.astimezone(env.services.settings.tz)
    return (local - timedelta(hours=env.services.rules.nudges.daily_hour)).date().isoformat()


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


async def run_if_due(env: JobEnv, job: Job) -> int | None:
    """Run `job` if its current period is unclaimed; None when another process has it."""
    key = period(job, env)
    db, clock = env.services.db, env.services.clock
    async with db.transaction() as session:
        if not await jobs.claim(session, job.name, key, owner(), clock.now(), STALE):
            return None
    return await _run_claimed(env, job, key)


async def run_job(env: JobEnv, name: str) -> int:
    """Run one job now, once, whatever else runs; KeyError for an unknown name."""
    job = JOBS[name]
    key = "manual-" + env.services.clock.now().astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    async with env.services.db.transaction() as session:
        await jobs.claim(session, job.name, key, owner(), env.services.clock.now(), STALE)
    done = await _run_claimed(env, job, key)
    if done is None:
        raise RuntimeError(f"job {name} failed; see the log")
    return done


async def _run_claimed(env: JobEnv, job: Job, key: str) -> int | None:
    db, clock = env.services.db, env.services.clock
    try:
        done = await job.run(env)
    except Exception as exc:
        log.exception("job failed job=%s period=%s", job.name, key)
        async with db.transaction() as session:
            await jobs.failed(session, job.name, key, type(exc).__name__)
        return None
    async with db.transaction() as session:
        await jobs.finish(session, job.name, key, clock.now(), done)
    if done:
        log.info("job done job=%s period=%s done=%d", job.name, key, done)
    return done


async def tick(env: JobEnv) -> dict[str, int]:
    """Run every scheduled job whose period is due here; returns what each run did."""
    ran = {}
    for job in JOBS.values():
        if not job.ticked:
            continue
        done = await run_if_due(env, job)
        if done is not None:
            ran[job.name] = done
    return ran
