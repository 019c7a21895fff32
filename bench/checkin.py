"""Check-in throughput and latency: memberbot's real router against the bare minimum SQL.

For each backend a fresh database is created and migrated, N + W members are created, then:

* memberbot: every member sends "签到" through `core.dispatcher.handle` (middlewares, member
  lookup, flood counter, check-in row, ledger entry, balance and growth update), at most C in
  flight, after W warm-up members; afterwards every measured member must hold exactly one
  check-in and one ledger entry of the rule's day-1 reward (5 points by default).
* memberbot, N processes (PostgreSQL + Redis only, as `serve --workers N`; default N: the
  CPUs): N + W other members, split over N child processes with C / N in flight each, every
  process with its own core (pool, Redis client, event loop) as a serving worker has; timed
  from the first process's start to the last one's end, CPU summed over the N.
* baseline: on the same database and the same N members, one transaction with one INSERT of a
  check-in row (the next day) and one UPDATE of the member's points, at the same concurrency.
  PostgreSQL: a raw asyncpg pool as large as memberbot's engine may grow (pool_size +
  max_overflow). SQLite: raw aiosqlite connections, as many as memberbot's engine may open,
  with the same PRAGMAs and BEGIN IMMEDIATE.

A member the process has seen before is checked in without a lookup (the statement checks
the account is still theirs: storage/members.py's `known`); the members here were created by
the same process, so every measured check-in is such a one. `--cold` forgets them first: each
measured check-in then looks its member up, as the first message after a restart does (the
N-process phase is cold either way: its processes never saw the measured members).

Usage: .venv/bin/python bench/checkin.py [--members 2000] [--concurrency 50] [--backend both]
       [--processes N] [--cold]
Only the given DSN / Redis URL are contacted (loopback by default); every phase has a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from sqlalchemy import Select, func, select

from bench._common import (
    BenchError,
    LiteBaseline,
    PgBaseline,
    Phase,
    bench_parser,
    checked_in,
    engine_connections,
    forget_keys,
    migrate,
    percentile,
    run_backends,
    run_phase,
    scratch_postgres,
    scratch_sqlite,
    sizes_ok,
    with_database,
)
from bot.app import Core, build_core
from bot.channels.console import CHANNEL
from bot.cli import gc_tuning
from bot.core.clock import FixedClock, local_day
from bot.core.messages import Inbound
from bot.settings import Settings
from handlers.checkin import reward_for
from storage import members
from storage.cache import Keys
from storage.db import Database
from storage.models import Identity, LedgerEntry

CHECKIN_TEXT = "签到"
MEASURED, WARMUP = "m", "w"  # external id prefixes of the two groups of members
SPREAD_MEASURED, SPREAD_WARMUP = "pm", "pw"  # the same for the N-process phase


@dataclass(frozen=True)
class Result:
    backend: str
    variant: str
    concurrency: int
    phase: Phase

    @property
    def n(self) -> int:
        return len(self.phase.latencies)

    @property
    def throughput(self) -> float:
        return self.n / self.phase.seconds

    @property
    def cpu_ms(self) -> float:
        """CPU of the bench process per check-in (memberbot runs in it; the database does not)."""
        return self.phase.cpu / self.n * 1000

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        return percentile(self.phase.latencies, p)


# ----------------------------------------------------------------------------------- memberbot


async def create_members(core: Core, names: Sequence[str], concurrency: int) -> dict[str, int]:
    """Members as first contact would create them; returns external id -> member id."""
    db, now = core.services.db, core.services.clock.now()

    async def create(i: int) -> None:
        await members.get_or_create(db, CHANNEL, names[i], now, display_name=names[i])

    await run_phase(create, range(len(names)), concurrency, deadline=600)
    async with db.sessions() as session:
        rows = await session.execute(
            select(Identity.external_id, Identity.member_id).where(Identity.channel == CHANNEL)
        )
        ids = {ext: member_id for ext, member_id in rows.all()}
    return {name: ids[name] for name in names}


def checkin_call(core: Core, names: Sequence[str]) -> Callable[[int], Awaitable[object]]:
    async def call(i: int) -> None:
        reply = await core.dispatcher.handle(
            Inbound(channel=CHANNEL, external_id=names[i], chat_id=names[i], text=CHECKIN_TEXT)
        )
        if reply is None:
            raise BenchError(f"{names[i]}: check-in was not answered (flood limit?)")

    return call


def measured_members(prefix: str = MEASURED) -> Select[tuple[int]]:
    """The measured members' ids as a subquery (no bound list: N may exceed SQLite's limit)."""
    return select(Identity.member_id).where(
        Identity.channel == CHANNEL, Identity.external_id.like(f"{prefix}%")
    )


async def verify_memberbot(
    core: Core, n: int, day: date, points: int, prefix: str = MEASURED, errors_seen: float = 0
) -> None:
    """Each measured member: one check-in today, one ledger entry and a balance of `points`."""
    ids = measured_members(prefix)
    async with core.services.db.sessions() as session:
        entries = await session.scalar(
            select(func.count())
            .select_from(LedgerEntry)
            .where(
                LedgerEntry.member_id.in_(ids),
                LedgerEntry.reason == "checkin",
                LedgerEntry.amount == points,
            )
        )
        rows, right = await checked_in(session, ids, day, points)
    errors = core.services.metrics.registry.get_sample_value("memberbot_handler_errors_total")
    errors = (errors or 0) + errors_seen
    if errors:
        raise BenchError(f"{errors:.0f} handler errors (see the log above)")
    if not entries == rows == right == n:
        raise BenchError(
            f"expected {n} check-ins worth {points}: ledger entries={entries}, "
            f"check-in rows={rows}, members with {points} points={right}"
        )


# ----------------------------------------------------------------------------------- N processes


@dataclass(frozen=True)
class Share:
    """What one of the N processes runs: its own core (pool, cache client, event loop)."""

    url: str
    redis_url: str | None
    prefix: str
    now: str
    warm: list[str]
    measured: list[str]
    concurrency: int
    timeout: float
    settle_gc: bool = True


def spread_child(share: Share, barrier: Any, out: Any) -> None:
    """In a child process: warm up, wait for the others, check its members in; report."""
    out.put(asyncio.run(_spread_child(share, barrier)))


async def _spread_child(
    share: Share, barrier: Any
) -> tuple[list[float], float, float, float, float]:
    clock = FixedClock(datetime.fromisoformat(share.now))
    settings = _settings(share.url, share.redis_url)
    core = await build_core(
        settings, clock=clock, keys=Keys(prefix=share.prefix), migrate_sqlite=False
    )
    if share.settle_gc:
        gc_tuning.settle()  # as serve does once its core is built
    try:
        c = share.concurrency
        await run_phase(checkin_call(core, share.warm), range(len(share.warm)), c, share.timeout)
        await asyncio.to_thread(barrier.wait, share.timeout)
        started = time.time()
        phase = await run_phase(
            checkin_call(core, share.measured), range(len(share.measured)), c, share.timeout
        )
        ended = time.time()
        errors = core.services.metrics.registry.get_sample_value("memberbot_handler_errors_total")
    finally:
        await core.close()
    return phase.latencies, phase.cpu, started, ended, errors or 0


def run_spread(
    url: str,
    redis_url: str | None,
    prefix: str,
    now: datetime,
    warm: list[str],
    measured: list[str],
    processes: int,
    concurrency: int,
    timeout: float,
    settle_gc: bool = True,
) -> tuple[Phase, float]:
    """The measured members split over `processes` children, `concurrency` split likewise;
    (the phase from the first start to the last end, handler errors)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    children = [
        ctx.Process(
            target=spread_child,
            args=(
                Share(
                    url,
                    redis_url,
                    prefix,
                    now.isoformat(),
                    warm[k::processes],
                    measured[k::processes],
                    max(1, concurrency // processes),
                    timeout,
                    settle_gc,
                ),
                barrier,
                out,
            ),
        )
        for k in range(processes)
    ]
    for child in children:
        child.start()
    try:
        reports = [out.get(timeout=timeout * 2 + 120) for _ in children]
    finally:
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
    latencies = [x for report in reports for x in report[0]]
    seconds = max(r[3] for r in reports) - min(r[2] for r in reports)
    return Phase(seconds, latencies, sum(r[1] for r in reports)), sum(r[4] for r in reports)


def _settings(url: str, redis_url: str | None) -> Settings:
    return Settings(
        database_url=url, redis_url=redis_url, default_locale="en", timezone="Asia/Shanghai"
    )


# ----------------------------------------------------------------------------------- baselines


async def verify_baseline(url: str, n: int, day: date, points: int) -> None:
    ids = measured_members()
    db = Database(url, pool_size=1)
    try:
        async with db.sessions() as session:
            rows, right = await checked_in(session, ids, day, points)
    finally:
        await db.close()
    if not rows == right == n:
        raise BenchError(
            f"baseline: expected {n} check-ins: rows={rows}, members with {points}={right}"
        )


# ----------------------------------------------------------------------------------- one backend


async def bench_backend(backend: str, args: argparse.Namespace) -> list[Result]:
    if backend == "postgres":
        async with scratch_postgres(args.pg_dsn) as dsn:
            return await _bench(
                backend, with_database(dsn, urlsplit(dsn).path[1:], "asyncpg"), args, pg_dsn=dsn
            )
    async with scratch_sqlite() as path:
        return await _bench(backend, f"sqlite+aiosqlite:///{path}", args, sqlite_path=path)


async def _bench(
    backend: str,
    url: str,
    args: argparse.Namespace,
    *,
    pg_dsn: str | None = None,
    sqlite_path: Path | None = None,
) -> list[Result]:
    n, c, w = args.members, args.concurrency, args.warmup
    await migrate(url)
    clock = FixedClock(datetime.now(UTC))
    prefix = f"mbbench:{uuid.uuid4().hex}"
    settings = _settings(url, args.redis_url if backend == "postgres" else None)
    core = await build_core(settings, clock=clock, keys=Keys(prefix=prefix), migrate_sqlite=False)
    if not args.no_gc_settle:
        gc_tuning.settle()  # as serve does once its core is built
    rules, now = core.services.rules, clock.now()
    today = local_day(now, settings.tz)
    points = reward_for(rules, rules.tiers[0].name, None, 1, today)
    warm = [f"{WARMUP}{i}" for i in range(w)]
    measured = [f"{MEASURED}{i}" for i in range(n)]
    # `serve --workers N` runs only with PostgreSQL and Redis: so does the N-process phase.
    spread = args.processes if backend == "postgres" and args.processes > 1 else 0
    spread_warm = [f"{SPREAD_WARMUP}{i}" for i in range(w if spread else 0)]
    spread_measured = [f"{SPREAD_MEASURED}{i}" for i in range(n if spread else 0)]
    try:
        ids = await create_members(core, warm + measured + spread_warm + spread_measured, c)
        conns = engine_connections(core.services.db)
        await run_phase(checkin_call(core, warm), range(w), c, args.timeout)
        if args.cold:
            members.forget_all(core.services.db)
        timed = await run_phase(checkin_call(core, measured), range(n), c, args.timeout)
        await verify_memberbot(core, n, today, points)
        label = f"memberbot 1 process{', cold' if args.cold else ''} (<={conns} conns)"
        results = [Result(backend, label, c, timed)]
        if spread:
            phase, errors = await asyncio.to_thread(
                run_spread,
                url,
                settings.redis_url,
                prefix,
                now,
                spread_warm,
                spread_measured,
                spread,
                c,
                args.timeout,
                not args.no_gc_settle,
            )
            await verify_memberbot(core, n, today, points, SPREAD_MEASURED, errors)
            used = min(c, spread * conns)
            results.append(
                Result(backend, f"memberbot {spread} processes (<={used} conns)", c, phase)
            )
    finally:
        await core.close()
        if settings.redis_url:
            await forget_keys(settings.redis_url, prefix)

    # The baseline credits the same members for tomorrow, so its rows never collide with today's.
    tomorrow = today + timedelta(1)
    warm_ids, measured_ids = [ids[x] for x in warm], [ids[x] for x in measured]
    if pg_dsn is not None:
        pool = await asyncpg.create_pool(pg_dsn, min_size=min(c, conns), max_size=conns)
        try:
            pg = PgBaseline(pool, tomorrow, points, now)
            timed = await _baseline_phases(pg, warm_ids, measured_ids, c, args.timeout)
        finally:
            await pool.close()
        variant = f"asyncpg ({conns} conns)"
    else:
        assert sqlite_path is not None
        lite = LiteBaseline(sqlite_path, conns, tomorrow, points, now)
        await lite.open()
        try:
            timed = await _baseline_phases(lite, warm_ids, measured_ids, c, args.timeout)
        finally:
            await lite.close()
        variant = f"aiosqlite ({conns} conns)"
    await verify_baseline(url, n, tomorrow, 2 * points)
    results.append(Result(backend, f"baseline {variant}", c, timed))
    return results


async def _baseline_phases(
    call: Callable[[int], Awaitable[None]],
    warm_ids: list[int],
    measured_ids: list[int],
    c: int,
    timeout: float,
) -> Phase:
    await run_phase(lambda i: call(warm_ids[i]), range(len(warm_ids)), c, timeout)
    return await run_phase(lambda i: call(measured_ids[i]), range(len(measured_ids)), c, timeout)


# ----------------------------------------------------------------------------------- report


def report(results: list[Result]) -> str:
    head = (
        f"{'backend':<9} {'variant':<36} {'N':>5} {'C':>4} {'checkins/s':>10} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'cpu ms':>7} {'thr ratio':>9} {'p99 ratio':>9}"
    )
    lines = [head, "-" * len(head)]
    base = {r.backend: r for r in results if r.variant.startswith("baseline")}
    for r in results:
        ratio_t = ratio_p = ""
        if r.variant.startswith("memberbot") and r.backend in base:
            b = base[r.backend]
            ratio_t = f"{r.throughput / b.throughput:.2f}"
            ratio_p = f"{r.percentile(99) / b.percentile(99):.2f}"
        lines.append(
            f"{r.backend:<9} {r.variant:<36} {r.n:>5} {r.concurrency:>4} {r.throughput:>10.0f} "
            f"{r.percentile(50):>8.1f} {r.percentile(99):>8.1f} {r.cpu_ms:>7.2f} "
            f"{ratio_t:>9} {ratio_p:>9}"
        )
    lines += [
        "ratios: memberbot / baseline; aim on PostgreSQL at C=50: thr ratio >= 0.60, "
        "p99 ratio <= 2.00",
        "cpu ms: CPU time of this process per check-in (memberbot runs inside it, "
        "the database does not)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(
        __doc__, members=2000, warmup=300, unit="members", in_flight="check-ins", child=False
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="N of the N-process phase (PostgreSQL + Redis, as serve --workers N; C split "
        "over them; 1: skip it)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="the 1-process phase forgets the members it created: every check-in looks its "
        "member up (as after a restart)",
    )
    parser.add_argument(
        "--no-gc-settle",
        action="store_true",
        help="leave Python's garbage collector as it comes (serve freezes what start-up built "
        "and collects the young generation less often: bot/cli/gc_tuning.py)",
    )
    args = parser.parse_args(argv)
    if not sizes_ok(args):
        return 2
    print(
        f"memberbot check-in bench {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    results = run_backends(bench_backend, args)
    if results is None:
        return 1
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
