"""`memberbot worker` (the jobs and the outbox on arq) and `memberbot jobs run NAME`."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from bot.cli import gc_tuning
from bot.cli.runtime import REDIS_SETTING, Failed, open_core
from bot.settings import Settings

log = logging.getLogger("memberbot")


def add(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="run the scheduled jobs and send the outbox, on Redis (MEMBERBOT_REDIS_URL)",
        description="Run the scheduled jobs and the outbox sender until SIGINT or SIGTERM, "
        "on arq (Redis at MEMBERBOT_REDIS_URL, the database at MEMBERBOT_DATABASE_URL). Start "
        "as many as you like, next to any number of `memberbot serve`: each job runs once per "
        "period and each push has one sender. Without Redis, `memberbot serve` runs them itself.",
    )
    worker.set_defaults(run=run_worker)

    jobs = commands.add_parser(
        "jobs",
        help="scheduled jobs (MEMBERBOT_DATABASE_URL)",
        description="Scheduled jobs on MEMBERBOT_DATABASE_URL.",
    )
    tasks = jobs.add_subparsers(dest="jobs_command", required=True, metavar="TASK")
    from bot.jobs.schedule import JOBS

    run = tasks.add_parser(
        "run",
        help="run one job now, once",
        description="Run one scheduled job now, once, whatever else runs (a second run in the "
        "same period changes nothing: each job's work is keyed). Prints how many things it did.",
    )
    run.add_argument("name", metavar="NAME", choices=sorted(JOBS), help=", ".join(sorted(JOBS)))
    run.set_defaults(run=run_one)


async def run_worker(settings: Settings, _args: argparse.Namespace) -> int:
    if settings.redis_url is None:
        raise Failed(
            f"memberbot worker needs {REDIS_SETTING} (without Redis, memberbot serve runs the "
            "jobs and sends the outbox itself)"
        )
    from arq.worker import Worker

    from bot.jobs.env import JobEnv
    from bot.jobs.worker import queue_name, worker_settings

    async with open_core(settings) as core:
        gc_tuning.settle()

        async def build() -> tuple[JobEnv, Any]:
            async def nothing() -> None:  # open_core closes the core
                return None

            return core.jobs, nothing

        log.info("worker started database=%s", core.services.db.dialect)
        queue = queue_name(settings.redis_prefix)
        worker = Worker(**worker_settings(build, settings.redis_url, queue=queue))
        try:
            await worker.async_run()
        except asyncio.CancelledError:
            # arq stops on SIGINT/SIGTERM by cancelling its main task: the normal way out.
            # A cancellation of this task itself goes on up.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        finally:
            await worker.close()
        log.info("worker stopped")
    return 0


async def run_one(settings: Settings, args: argparse.Namespace) -> int:
    from bot.jobs.schedule import run_job

    async with open_core(settings) as core:
        try:
            done = await run_job(core.jobs, args.name)
        except RuntimeError as exc:
            raise Failed(str(exc)) from None
        if args.name != "outbox":
            # What the job queued goes out now too, when this process can send it.
            await core.services.pushes.settle()
    print(f"{args.name}: {done} done")
    return 0
