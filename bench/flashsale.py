"""Flash-sale claim engine: N members claiming one sale at C in flight, next to the bare step.

(a) of issue 11: `handlers.flashsale_engine.claim_sale` inside this process (the sale as kept
per process, the Redis script on PostgreSQL + Redis, and for a unit granted the membership
read, the SQL claim row and conditional UPDATE) against a baseline doing only the atomic step,
timed in the same run on the same scratch database: the raw Lua call on Redis (one run of
the take script), the bare conditional UPDATE on SQLite.
A run fails unless exactly min(N, stock) units are won, one per member, and none beyond stock.

    .venv/bin/python bench/flashsale.py --backend both --members 10000 --concurrency 1000
"""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    BenchError,
    Phase,
    bench_parser,
    box_note,
    create_members,
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
from bot.admin import flashsales as admin_sales
from bot.app import build_core
from bot.core.clock import FixedClock
from bot.core.i18n import Translator
from bot.settings import Settings
from handlers.flashsale_engine import claim_sale
from storage import communities
from storage.cache import Keys
from storage.flash_stock import fast_path
from storage.models import FlashClaim, FlashSale, Member

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
BARE_UPDATE = text(
    "UPDATE flash_sales SET claimed = claimed + 1 WHERE id = :id AND claimed < stock "
    "AND state IN ('scheduled', 'live')"
)


def row(name: str, phase: Phase) -> tuple[str, float, float, float]:
    n = len(phase.latencies)
    rate = n / phase.seconds
    return name, rate, percentile(phase.latencies, 50), percentile(phase.latencies, 99)


async def bench_backend(backend: str, args) -> list[tuple[str, float, float, float]]:  # type: ignore[no-untyped-def]
    if backend == "postgres":
        async with scratch_postgres(args.pg_dsn) as dsn:
            return await _run(backend, with_database(dsn, dsn.rsplit("/", 1)[1], "asyncpg"), args)
    async with scratch_sqlite() as path:
        return await _run(backend, f"sqlite+aiosqlite:///{path}", args)


async def _run(backend: str, url: str, args) -> list[tuple[str, float, float, float]]:  # type: ignore[no-untyped-def]
    await migrate(url)
    prefix = f"mbbench:{uuid.uuid4().hex}"
    redis_url = args.redis_url if backend == "postgres" else None
    settings = Settings(database_url=url, redis_url=redis_url, default_locale="en")
    core = await build_core(settings, clock=FixedClock(NOW), keys=Keys(prefix=prefix))
    services = core.services
    try:
        names = [f"fs-{i}" for i in range(args.members)]
        ids = await create_members(url, "console", names, NOW, min(args.concurrency, 50))
        async with services.db.transaction() as session:
            found, _ = await communities.upsert(session, "bench", {"names": {"en": "B"}}, NOW)
            for member_id in ids.values():
                await communities.join(session, found.id, member_id, "console", NOW)
        async with services.db.reader() as session:
            crowd = list((await session.execute(select(Member))).scalars())
        sale = {"community": "bench", "title": "T", "price": "1", "stock": args.stock,
                "duration_minutes": 60}  # fmt: skip
        engine_sale = await admin_sales.create_sale(services, sale)
        bare_sale = await admin_sales.create_sale(services, sale)
        t = Translator("en")
        won: Counter[str] = Counter()

        async def engine(i: int) -> None:
            try:
                await claim_sale(services, crowd[i], engine_sale["code"], t)
                won["engine"] += 1
            except Exception as exc:
                if type(exc).__name__ != "DomainError":
                    raise

        async with services.db.reader() as session:
            bare_id = (
                await session.execute(
                    select(FlashSale.id).where(FlashSale.code == bare_sale["code"])
                )
            ).scalar_one()
        stock = fast_path(services.cache)

        async def bare(i: int) -> None:
            if stock is not None:
                code = f"B{i:09d}"
                verdict = await stock.script_once(bare_id, crowd[i].id, NOW, NOW, code)
                won["bare"] += verdict == "ok"
                return
            async with services.db.transaction() as session:
                done = await session.execute(BARE_UPDATE, {"id": bare_id})
                won["bare"] += done.rowcount  # type: ignore[attr-defined]

        order = range(len(crowd))
        engine_phase = await run_phase(engine, order, args.concurrency, args.timeout)
        bare_phase = await run_phase(bare, order, args.concurrency, args.timeout)
        await _check(services, engine_sale["code"], won, min(len(crowd), args.stock))
    finally:
        await core.close()
        if redis_url:
            await forget_keys(redis_url, prefix)
    step = "raw Lua call" if backend == "postgres" else "bare conditional UPDATE"
    label = "PostgreSQL + Redis" if backend == "postgres" else "SQLite"
    return [row(f"{label}: claim engine", engine_phase), row(f"{label}: {step}", bare_phase)]


async def _check(services, code: str, won: Counter[str], expected: int) -> None:  # type: ignore[no-untyped-def]
    async with services.db.reader() as session:
        sale = (await session.execute(select(FlashSale).where(FlashSale.code == code))).scalar_one()
        claims = await session.execute(
            select(FlashClaim.member_id, func.count())
            .where(FlashClaim.sale_id == sale.id)
            .group_by(FlashClaim.member_id)
        )
        per_member = dict(claims.all())
    if not (won["engine"] == sale.claimed == sum(per_member.values()) == expected):
        raise BenchError(f"engine: {won['engine']} won, {sale.claimed} claimed, {expected} due")
    if per_member and max(per_member.values()) > 1:
        raise BenchError("a member won more than the limit")
    if won["bare"] != expected:
        raise BenchError(f"baseline: {won['bare']} won, {expected} due")


def main() -> int:
    parser = bench_parser(
        __doc__, members=10_000, warmup=0, unit="members", in_flight="claims", child=False
    )
    parser.add_argument("--stock", type=int, default=1000, help="units on sale")
    args = parser.parse_args()
    if not sizes_ok(args):
        return 2
    print(box_note())
    results = run_backends(bench_backend, args)
    if results is None:
        return 1
    print(f"N={args.members} C={args.concurrency} stock={args.stock}; 0 oversell")
    print("| run | decisions/s | p50 ms | p99 ms |\n|---|---|---|---|")
    for name, rate, p50, p99 in results:
        print(f"| {name} | {rate:.0f} | {p50:.1f} | {p99:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
