"""GET /api/stats and the dashboard's overview on a big PostgreSQL programme: p50 / p99.

A scratch database is created and migrated, then filled by bulk COPY (asyncpg): M members
(joined over the last two years, tiers and apps mixed), about E ledger entries per member
over the last year (earn, spend, expire, adjust), a check-in row for each earn on its own
day, orders for one member in four, invites and community memberships; then VACUUM ANALYZE.
The real server application (bearer token, JSON) answers R requests of each page in turn,
after two warm-ups, one at a time: the figures are the latency an operator sees.

Usage: .venv/bin/python bench/stats.py [--members 20000] [--entries 10] [--requests 20]
       .venv/bin/python bench/stats.py --full   # 1,000,000 members, 10,000,000 entries
       .venv/bin/python bench/stats.py --full --keep memberbot_stats  # seed once, time again
Only the given DSN is contacted (loopback by default); the scratch database is dropped, unless
`--keep NAME` names one to keep: seeded when new, else migrated to the head and timed as it is
(drop it with `--drop`).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from bench._common import (
    box_note,
    migrate,
    percentile,
    plain_dsn,
    scratch_postgres,
    with_database,
)
from bot.app import build_core
from bot.core.clock import FixedClock
from bot.http.server import create_app
from bot.settings import Settings
from storage.db import Database
from storage.stats import rollup

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TOKEN = "bench-admin-token"
TIERS = (("bronze", 70), ("silver", 20), ("gold", 8), ("diamond", 2))
CHANNELS = ("wechat", "telegram")
KINDS = (("earn", 70), ("spend", 15), ("expire", 10), ("adjust", 5))
BATCH = 200_000  # rows per COPY
PAGES = ("/api/stats?days=7", "/api/stats?days=30", "/api/stats?days=90", "/dashboard/?days=30")


def _pick(weighted: tuple[tuple[str, int], ...], rng: random.Random) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


def _members(n: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    for i in range(1, n + 1):
        joined = NOW - timedelta(seconds=rng.randrange(730 * 86400))
        tier = _pick(TIERS, rng)
        yield (i, joined, rng.randrange(5000), rng.randrange(20000), tier, f"B{i:09d}")


def _identities(n: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    for i in range(1, n + 1):
        yield (i, CHANNELS[i % 2], f"x{i}", NOW - timedelta(days=800), False)
        if i % 10 == 0:  # one in ten linked both apps
            yield (i, CHANNELS[(i + 1) % 2], f"x{i}", NOW - timedelta(days=800), False)


def _activity(
    n: int, per_member: int, rng: random.Random
) -> Iterator[tuple[str, tuple[object, ...]]]:
    """Ledger entries, and a check-in for each earn (on distinct days of the member)."""
    key = 0
    for member in range(1, n + 1):
        days = rng.sample(range(365), min(per_member, 365))
        for day_ago in days:
            key += 1
            # Within the hour before 20:00 Shanghai: one local day per `day_ago`, so a member's
            # check-ins stay one a day.
            at = NOW - timedelta(days=day_ago, seconds=rng.randrange(3600))
            kind = _pick(KINDS, rng)
            amount = rng.randrange(1, 50) * (1 if kind in ("earn", "adjust") else -1)
            yield "ledger", (member, kind, amount, kind, f"b:{key}", at, 0)
            if kind == "earn":
                local = (at + timedelta(hours=8)).date()
                yield "checkin", (member, local, 1, amount, at)


def _orders(n: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    number = 0
    for member in range(1, n + 1, 4):
        for _ in range(rng.randrange(1, 4)):
            number += 1
            at = NOW - timedelta(seconds=rng.randrange(365 * 86400))
            amount = Decimal(rng.randrange(1000, 100000)) / 100
            refunded = rng.random() < 0.05
            yield (
                f"B-{number}",
                member,
                amount,
                "CNY",
                "refunded" if refunded else "paid",
                0,
                0,
                at,
                amount if refunded else Decimal(0),
                0,
                0,
            )


async def _copy(
    conn: asyncpg.Connection, table: str, columns: list[str], rows: Iterator[tuple[object, ...]]
) -> int:
    total, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            await conn.copy_records_to_table(table, records=batch, columns=columns)
            total, batch = total + len(batch), []
    if batch:
        await conn.copy_records_to_table(table, records=batch, columns=columns)
        total += len(batch)
    return total


async def seed(dsn: str, members: int, entries: int) -> dict[str, int]:
    rng = random.Random(14)
    conn = await asyncpg.connect(dsn)
    counts: dict[str, int] = {}
    try:
        counts["members"] = await _copy(
            conn,
            "members",
            ["id", "created_at", "points", "growth", "tier", "invite_code"],
            _members(members, rng),
        )
        await conn.execute("SELECT setval('members_id_seq', $1)", members)
        counts["identities"] = await _copy(
            conn,
            "identities",
            ["member_id", "channel", "external_id", "created_at", "unreachable"],
            _identities(members, rng),
        )
        ledger: list[tuple[object, ...]] = []
        checkins: list[tuple[object, ...]] = []
        counts["ledger_entries"] = counts["checkins"] = 0
        for table, row in _activity(members, entries, rng):
            (ledger if table == "ledger" else checkins).append(row)
            if len(ledger) >= BATCH:
                counts["ledger_entries"] += await _flush_ledger(conn, ledger)
                counts["checkins"] += await _flush_checkins(conn, checkins)
        counts["ledger_entries"] += await _flush_ledger(conn, ledger)
        counts["checkins"] += await _flush_checkins(conn, checkins)
        counts["orders"] = await _copy(
            conn,
            "orders",
            [
                "order_id",
                "member_id",
                "amount",
                "currency",
                "status",
                "points",
                "growth",
                "created_at",
                "refunded_amount",
                "points_reversed",
                "growth_reversed",
            ],
            _orders(members, rng),
        )
        await conn.execute(
            "INSERT INTO communities (slug, names, tag, min_tier, description, active, created_at)"
            " VALUES ('coffee', '{\"en\": \"Coffee\"}', '', 'bronze', '', true, $1),"
            " ('vip', '{\"en\": \"VIP\"}', '', 'gold', '', true, $1)",
            NOW,
        )
        await conn.execute(
            "INSERT INTO community_members (community_id, member_id, status, via, joined_at)"
            " SELECT 1 + (id % 2), id, 'joined', 'code',"
            " $1::timestamptz - (id % 300) * interval '1 day'"
            " FROM members WHERE id % 5 = 0",
            NOW,
        )
        await conn.execute(
            "INSERT INTO invites (inviter_id, invitee_id, via, status, created_at, decided_at)"
            " SELECT id - 1, id, 'code', 'rewarded', created_at, created_at"
            " FROM members WHERE id % 7 = 0",
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return counts


async def _flush_ledger(conn: asyncpg.Connection, rows: list[tuple[object, ...]]) -> int:
    columns = [
        "member_id",
        "kind",
        "amount",
        "reason",
        "idempotency_key",
        "created_at",
        "remaining",
    ]
    await conn.copy_records_to_table("ledger_entries", records=rows, columns=columns)
    done, rows[:] = len(rows), []
    return done


async def _flush_checkins(conn: asyncpg.Connection, rows: list[tuple[object, ...]]) -> int:
    columns = ["member_id", "day", "streak", "points", "created_at"]
    await conn.copy_records_to_table("checkins", records=rows, columns=columns)
    done, rows[:] = len(rows), []
    return done


async def measure(url: str, requests: int) -> dict[str, list[float]]:
    settings = Settings(database_url=url, admin_token=TOKEN, timezone="Asia/Shanghai")
    core = await build_core(settings, clock=FixedClock(NOW), migrate_sqlite=False)
    server = TestServer(create_app(core, background=False))
    await server.start_server()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    timings: dict[str, list[float]] = {}
    try:
        async with ClientSession(base_url=str(server.make_url("/"))) as http:
            for path in PAGES:
                timings[path] = []
                for n in range(requests + 2):
                    started = time.perf_counter()
                    async with http.get(path, headers=headers) as resp:
                        await resp.read()
                        if resp.status != 200:
                            raise SystemExit(f"{path}: HTTP {resp.status}")
                    if n >= 2:  # two warm-ups
                        timings[path].append(time.perf_counter() - started)
    finally:
        await server.close()
        await core.close()
    return timings


async def _seed_and_measure(
    args: argparse.Namespace, dsn: str, fresh: bool
) -> dict[str, list[float]]:
    url = with_database(args.pg_dsn, dsn.rsplit("/", 1)[1], "asyncpg")
    started = time.perf_counter()
    await migrate(url)
    if fresh:
        print(f"migrated in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        counts = await seed(dsn, args.members, args.entries)
        seeded = time.perf_counter() - started
        sizes = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        print(f"seeded in {seeded:.0f} s: {sizes}")
    else:
        print(f"kept database migrated to the head in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    await roll_up(url)
    print(
        f"activity rolled up (the `stats` job's first run) in {time.perf_counter() - started:.0f} s"
    )
    return await measure(url, args.requests)


async def roll_up(url: str) -> None:
    """The roll-up as the hourly job leaves it at NOW, built afresh (a kept database's was built
    by its migration at the wall clock's time, not the bench's)."""
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        reach = await conn.fetchval("SELECT through FROM stats_rollups")
        if reach == rollup.target(NOW):  # kept, and built by a run of this bench already
            await _advance(url)  # nothing to add: only the job's VACUUM, if left undone
            return
        if reach is not None and reach < rollup.target(NOW):  # the job's next run
            await _advance(url)
            return
        await conn.execute("TRUNCATE stats_comebacks, stats_activity, stats_ledger_hours")
        # Their tier and communities are the triggers' (always current): only the days go.
        await conn.execute(
            "UPDATE stats_members SET last_checkin_day = NULL, last_spend_at = NULL"
            " WHERE last_checkin_day IS NOT NULL OR last_spend_at IS NOT NULL"
        )
        await conn.execute("UPDATE stats_rollups SET through = NULL")
        await _advance(url)
    finally:
        await conn.close()


async def _advance(url: str) -> None:
    """What the `stats` job does at NOW (bot/jobs/stats.py): advance, then tidy."""
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as session:
            await rollup.advance(session, NOW)
        await rollup.tidy(db)
    finally:
        await db.close()


async def _kept(admin_dsn: str, name: str, drop: bool) -> bool:
    """Whether the kept database `name` already exists (created empty when not)."""
    admin = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        if drop:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return False
        found = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not found:
            await admin.execute(f"CREATE DATABASE {name}")
        return bool(found)
    finally:
        await admin.close()


async def main(args: argparse.Namespace) -> None:
    if args.drop:
        await _kept(args.pg_dsn, args.keep, drop=True)
        return
    print(box_note())
    if args.keep:
        existed = await _kept(args.pg_dsn, args.keep, drop=False)
        timings = await _seed_and_measure(
            args, with_database(args.pg_dsn, args.keep), fresh=not existed
        )
    else:
        async with scratch_postgres(args.pg_dsn) as dsn:
            timings = await _seed_and_measure(args, dsn, fresh=True)
    print("| page | requests | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for path, latencies in timings.items():
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        print(f"| `{path}` | {len(latencies)} | {p50:.0f} | {p99:.0f} |")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=20_000, help="members (M)")
    parser.add_argument("--entries", type=int, default=10, help="ledger entries per member (E)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page (R)")
    parser.add_argument("--full", action="store_true", help="1,000,000 members, 10 entries each")
    parser.add_argument(
        "--pg-dsn",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a database to connect to for CREATE/DROP of the scratch database",
    )
    parser.add_argument("--keep", default="", help="a database to seed once and keep")
    parser.add_argument("--drop", action="store_true", help="drop the --keep database, then stop")
    args = parser.parse_args()
    if args.keep and not args.keep.isidentifier():
        parser.error("--keep takes a plain database name (letters, digits, _)")
    if args.drop and not args.keep:
        parser.error("--drop needs --keep NAME")
    if args.full:
        args.members, args.entries = 1_000_000, 10
    if args.members < 1 or not 1 <= args.entries <= 365 or args.requests < 1:
        parser.error("--members and --requests must be positive, --entries from 1 to 365")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
