"""WeChat webhook throughput and latency: signed "签到" posts through POST /wechat of the real
app, against two bare aiohttp servers measured the same way in the same run.

Every server runs in a child process of its own (the load generator does not share its CPU
time; on 2 cores the database, Redis, the server and the load generator still share the box):

* memberbot: `memberbot serve` (bot.cli.main: build_core + create_app under web.AppRunner)
  with settings from MEMBERBOT_* variables; its Redis keys get a unique prefix (the only
  patch) so they can be removed afterwards. SQLite uses the in-process cache; PostgreSQL
  uses Redis.
* memberbot --workers N (PostgreSQL + Redis; default N: the CPUs): the same, N serving
  processes on one port, with W + N other openids; server CPU is summed over the processes.
* baseline (a) "bare": an aiohttp handler that checks the same signature, parses the same
  XML with defusedxml and renders a passive text reply; no database, no cache.
* baseline (b) "bare+sql": (a) plus the bare check-in SQL of bench/checkin.py (one
  transaction: one INSERT of a check-in row, one UPDATE of points) on the same database,
  through asyncpg / aiosqlite with as many connections as memberbot's engine may open. The
  openid -> member id map is loaded once at start-up (memberbot looks the member up per post).

Each backend gets a fresh database (migrated with storage.migrate.upgrade) and W + N members
created as first contact on "wechat" would create them. Per server: W warm-up posts, then N
measured posts, one per openid, at most C in flight over keep-alive connections. Afterwards
every reply must be a 200 XML text reply to that openid with the check-in text, memberbot must
have logged no handler error, and each measured member must hold exactly one ledger entry, one
check-in row and a balance of the day-1 reward (5 points by default); the baseline (b) credits
the next day, so its rows never collide with memberbot's. Any difference fails the run.

Usage: .venv/bin/python bench/wechat.py [--members 1000] [--concurrency 50] [--backend both]
Only the given DSN / Redis URL and 127.0.0.1 are contacted; every phase has a deadline.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ (the script's folder, first on sys.path) must not shadow packages: bench/telegram.py
# is not python-telegram-bot. Appended first so that the removal never fails.
sys.path.append(str(Path(__file__).resolve().parent))
sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import hashlib
import hmac
import itertools
import json
import os
import platform
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode, urlsplit
from xml.etree.ElementTree import ParseError
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import defusedxml.ElementTree as SafeET
from aiohttp import web
from sqlalchemy import func, select

from bench._common import (
    ROOT,
    BenchError,
    LiteBaseline,
    Measured,
    PgBaseline,
    Phase,
    Server,
    Usage,
    bench_parser,
    box_note,
    check_prefix_used,
    checked_in,
    child_env,
    create_members,
    forget_keys,
    metric,
    migrate,
    plain_dsn,
    run_backends,
    run_phase,
    running,
    scratch_postgres,
    scratch_sqlite,
    serve_app,
    serve_memberbot,
    sizes_ok,
    unique_prefix,
    with_database,
    writer_connections,
)
from bot.core.clock import local_day
from bot.settings import load_rules
from handlers.checkin import reward_for
from storage.db import Database
from storage.models import Identity, LedgerEntry

CHANNEL = "wechat"
TOKEN = "benchtoken"
ACCOUNT = "gh_bench"
CHECKIN_TEXT = "签到"
TIMEZONE = "Asia/Shanghai"
MEASURED, WARMUP = "obench-m-", "obench-w-"  # openid prefixes of the two groups
SPREAD_MEASURED, SPREAD_WARMUP = "obench-n-", "obench-v-"  # the same for serve --workers N
SCRIPT = Path(__file__).resolve()
BARE_REPLY = "Checked in! +{points} points, 1-day streak. Balance: {balance}.\nTomorrow: +5 points."


# ----------------------------------------------------------------------------------- protocol


def sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signed_url(base: str) -> str:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    query = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    return f"{base}/wechat?{urlencode(query)}"


_msg_ids = itertools.count(time.time_ns() // 1000)


def message(openid: str) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{CHECKIN_TEXT}]]></Content><MsgId>{next(_msg_ids)}</MsgId></xml>"
    ).encode()


def text_reply(to: str, sender: str, content: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{to}]]></ToUserName>"
        f"<FromUserName><![CDATA[{sender}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content></xml>"
    )


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: str


def check_answer(openid: str, answer: Answer, expected: str) -> str | None:
    """Why `answer` is not a 200 passive text reply to `openid` containing `expected`."""
    if answer.status != 200:
        return f"HTTP {answer.status}: {answer.body[:200]!r}"
    if answer.content_type != "application/xml":
        return f"content type {answer.content_type}: {answer.body[:200]!r}"
    try:
        root = SafeET.fromstring(answer.body, forbid_dtd=True)
    except ParseError:
        return f"not XML: {answer.body[:200]!r}"
    if root.findtext("MsgType") != "text" or root.findtext("ToUserName") != openid:
        return f"not a text reply to {openid}: {answer.body[:200]!r}"
    if expected not in (root.findtext("Content") or ""):
        return f"no {expected!r} in the reply: {root.findtext('Content')!r}"
    return None


# ----------------------------------------------------------------------------------- baselines


def bare_app(config: dict[str, object]) -> web.Application:
    """Baseline (a), or (b) with config["sql"]: signature, defusedxml, [SQL], text reply."""
    sql = config.get("sql")
    points = int(str(config["points"]))
    ids: dict[str, int] = {}
    state: dict[str, Callable[[int], Awaitable[None]]] = {}
    app = web.Application(client_max_size=64 * 1024)

    async def startup(_app: web.Application) -> None:
        if not isinstance(sql, dict):
            return
        day = date.fromisoformat(sql["day"])
        now = datetime.fromisoformat(sql["now"])
        query = "SELECT external_id, member_id FROM identities WHERE channel = "
        if "dsn" in sql:
            conns = int(sql["conns"])
            pool = await asyncpg.create_pool(
                sql["dsn"], min_size=min(int(sql["concurrency"]), conns), max_size=conns
            )
            for row in await pool.fetch(query + "$1", CHANNEL):
                ids[row[0]] = row[1]
            state["call"] = PgBaseline(pool, day, points, now)
            app.on_cleanup.append(lambda _app: pool.close())
        else:
            lite = LiteBaseline(Path(sql["path"]), int(sql["conns"]), day, points, now)
            await lite.open()
            async with lite.all[0].execute(query + "?", (CHANNEL,)) as cursor:
                for external_id, member_id in await cursor.fetchall():
                    ids[external_id] = member_id
            state["call"] = lite
            app.on_cleanup.append(lambda _app: lite.close())

    async def receive(request: web.Request) -> web.Response:
        q = request.query
        given = q.get("signature", "").encode("utf-8", "surrogateescape")
        expected = sign(TOKEN, q.get("timestamp", ""), q.get("nonce", "")).encode()
        if not hmac.compare_digest(expected, given):
            return web.Response(status=403, text="bad signature")
        try:
            root = SafeET.fromstring(await request.read(), forbid_dtd=True)
        except ParseError:
            return web.Response(status=400, text="bad request")
        openid = root.findtext("FromUserName") or ""
        if root.findtext("MsgType") != "text" or root.findtext("Content") != CHECKIN_TEXT:
            return web.Response(status=400, text="not a check-in")
        balance = points
        if "call" in state:
            await state["call"](ids[openid])
            balance = 2 * points  # memberbot credited today, this baseline tomorrow
        content = BARE_REPLY.format(points=points, balance=balance)
        reply = text_reply(openid, root.findtext("ToUserName") or "", content)
        return web.Response(text=reply, content_type="application/xml")

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.on_startup.append(startup)
    app.router.add_post("/wechat", receive)
    app.router.add_get("/healthz", healthz)
    return app


def child(config: dict[str, object]) -> int:
    port = int(str(config["port"]))
    if config["mode"] == "memberbot":
        return serve_memberbot(port, str(config["prefix"]), workers=int(str(config["workers"])))
    return serve_app(bare_app(config), port)


# ----------------------------------------------------------------------------------- measuring


async def drive(
    server: Server, openids: Sequence[str], concurrency: int, timeout: float
) -> tuple[Phase, list[Answer], float, float]:
    """Post "签到" once per openid at `concurrency`; (phase, answers, server cpu, busy share)."""
    requests = [(signed_url(server.url), message(openid)) for openid in openids]
    answers: list[Answer | None] = [None] * len(openids)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeouts = aiohttp.ClientTimeout(total=60)
    headers = {"Content-Type": "text/xml"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeouts) as session:

        async def call(i: int) -> None:
            url, body = requests[i]
            async with session.post(url, data=body, headers=headers) as response:
                answers[i] = Answer(response.status, response.content_type, await response.text())

        usage = Usage(server.pid)
        usage.start()
        phase = await run_phase(call, range(len(openids)), concurrency, timeout)
        usage.stop()
    done = [a for a in answers if a is not None]
    if len(done) != len(openids):
        raise BenchError(f"{len(openids) - len(done)} posts got no answer")
    return phase, done, usage.cpu, usage.busy


async def measure(
    backend: str,
    variant: str,
    kind: str,
    server: Server,
    warm: Sequence[str],
    measured: Sequence[str],
    args: argparse.Namespace,
    expected: str,
) -> Measured:
    async with running(server):
        await drive(server, warm, args.concurrency, args.timeout)
        phase, answers, cpu, busy = await drive(server, measured, args.concurrency, args.timeout)
        # With --workers N, /metrics is one process's: the replies and the database checks
        # below still catch any failure.
        is_memberbot = kind in ("m", "n")
        errors = await metric(server.url, "memberbot_handler_errors_total") if is_memberbot else 0
    bad = [
        f"{openid}: {why}"
        for openid, answer in zip(measured, answers, strict=True)
        if (why := check_answer(openid, answer, expected))
    ]
    if bad:
        raise BenchError(f"{variant}: {len(bad)} bad replies, first: {bad[0]}")
    if errors:
        raise BenchError(f"{variant}: {errors:.0f} handler errors")
    return Measured(backend, variant, kind, args.concurrency, phase, cpu, busy)


async def verify_memberbot(
    url: str, n: int, day: date, points: int, prefix: str = MEASURED
) -> None:
    """Each measured openid: exactly one ledger entry of `points`, one check-in, that balance."""
    ids = select(Identity.member_id).where(
        Identity.channel == CHANNEL, Identity.external_id.like(f"{prefix}%")
    )
    db = Database(url, pool_size=1)
    try:
        async with db.sessions() as session:
            per_member = (
                await session.execute(
                    select(LedgerEntry.member_id, func.count(), func.sum(LedgerEntry.amount))
                    .where(LedgerEntry.member_id.in_(ids))
                    .group_by(LedgerEntry.member_id)
                )
            ).all()
            rows, right = await checked_in(session, ids, day, points)
    finally:
        await db.close()
    exact = sum(1 for _, count, total in per_member if count == 1 and total == points)
    if not exact == rows == right == n:
        raise BenchError(
            f"memberbot: expected {n} openids with one ledger entry of {points}: "
            f"exactly that={exact} (members with ledger entries={len(per_member)}), "
            f"check-in rows={rows}, members with {points} points={right}"
        )


async def verify_baseline(url: str, n: int, day: date, points: int) -> None:
    ids = select(Identity.member_id).where(
        Identity.channel == CHANNEL, Identity.external_id.like(f"{MEASURED}%")
    )
    db = Database(url, pool_size=1)
    try:
        async with db.sessions() as session:
            rows, right = await checked_in(session, ids, day, points)
    finally:
        await db.close()
    if not rows == right == n:
        raise BenchError(f"bare+sql: expected {n} check-ins: rows={rows}, with {points}={right}")


# ----------------------------------------------------------------------------------- one backend


async def bench_backend(backend: str, args: argparse.Namespace) -> list[Measured]:
    if backend == "postgres":
        async with scratch_postgres(args.pg_dsn) as dsn:
            url = with_database(dsn, urlsplit(dsn).path[1:], "asyncpg")
            return await _bench(backend, url, args)
    async with scratch_sqlite() as path:
        return await _bench(backend, f"sqlite+aiosqlite:///{path}", args)


async def _bench(backend: str, url: str, args: argparse.Namespace) -> list[Measured]:
    await migrate(url)
    rules_file = ROOT / "memberbot.toml"  # what `memberbot serve` reads from its cwd (ROOT)
    rules = load_rules(rules_file if rules_file.exists() else None)
    now = datetime.now(UTC)
    today = local_day(now, ZoneInfo(TIMEZONE))
    points = reward_for(rules, rules.tiers[0].name, None, 1, today)
    warm = [f"{WARMUP}{i:06d}" for i in range(args.warmup)]
    measured = [f"{MEASURED}{i:06d}" for i in range(args.members)]
    # `serve --workers N` runs only with PostgreSQL and Redis: so does its phase.
    spread = args.processes if backend == "postgres" and args.processes > 1 else 0
    spread_warm = [f"{SPREAD_WARMUP}{i:06d}" for i in range(args.warmup if spread else 0)]
    spread_measured = [f"{SPREAD_MEASURED}{i:06d}" for i in range(args.members if spread else 0)]
    everyone = warm + measured + spread_warm + spread_measured
    await create_members(url, CHANNEL, everyone, now, args.concurrency)
    redis_url = args.redis_url if backend == "postgres" else None
    prefix = unique_prefix()
    env = child_env(
        {
            "MEMBERBOT_DATABASE_URL": url,
            "MEMBERBOT_REDIS_URL": redis_url or "",
            "MEMBERBOT_WECHAT_TOKEN": TOKEN,
            "MEMBERBOT_DEFAULT_LOCALE": "en",
            "MEMBERBOT_TIMEZONE": TIMEZONE,
        }
    )
    conns = writer_connections(url)
    cache = "Redis" if redis_url else "memory cache"
    results: list[Measured] = []
    expected = f"Checked in! +{points} points"
    try:
        config = {"mode": "memberbot", "prefix": prefix, "workers": 1}
        server = Server(SCRIPT, config, env)
        variant = f"memberbot 1 process ({cache})"
        results.append(await measure(backend, variant, "m", server, warm, measured, args, expected))
    finally:
        removed = await forget_keys(redis_url, prefix) if redis_url else -1
    check_prefix_used(removed)
    await verify_memberbot(url, len(measured), today, points)
    if spread:
        assert redis_url is not None
        # The serving processes are started afresh (python -m bot.cli serve --reuse-port):
        # their keys go under MEMBERBOT_REDIS_PREFIX rather than the patch's prefix.
        prefix = unique_prefix()
        config = {"mode": "memberbot", "prefix": prefix, "workers": spread}
        server = Server(SCRIPT, config, env | {"MEMBERBOT_REDIS_PREFIX": prefix})
        variant = f"memberbot --workers {spread} ({cache})"
        try:
            results.append(
                await measure(
                    backend, variant, "n", server, spread_warm, spread_measured, args, expected
                )
            )
        finally:
            check_prefix_used(await forget_keys(redis_url, prefix))
        await verify_memberbot(url, len(spread_measured), today, points, SPREAD_MEASURED)

    bare = Server(SCRIPT, {"mode": "bare", "points": points}, env)
    results.append(await measure(backend, "(a) bare", "a", bare, warm, measured, args, "Checked"))

    tomorrow = today + timedelta(1)
    if backend == "postgres":
        sql: dict[str, object] = {"dsn": plain_dsn(url)}
        variant = f"(b) bare+asyncpg ({conns} conns)"
    else:
        sql = {"path": url.removeprefix("sqlite+aiosqlite:///")}
        variant = f"(b) bare+aiosqlite ({conns} conn)"
    sql |= {
        "conns": conns,
        "concurrency": args.concurrency,
        "day": tomorrow.isoformat(),
        "now": now.isoformat(),
    }
    with_sql = Server(SCRIPT, {"mode": "bare-sql", "points": points, "sql": sql}, env)
    results.append(await measure(backend, variant, "b", with_sql, warm, measured, args, "Checked"))
    await verify_baseline(url, len(measured), tomorrow, 2 * points)
    return results


# ----------------------------------------------------------------------------------- report


def report(results: list[Measured]) -> str:
    head = (
        f"{'backend':<9} {'variant':<36} {'N':>5} {'C':>4} {'req/s':>7} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'p99.9 ms':>8} {'srv cpu':>7} {'busy':>5} "
        f"{'thr/b':>6} {'p99/b':>6} {'thr/a':>6}"
    )
    lines = [head, "-" * len(head)]
    by = {(r.backend, r.kind): r for r in results}
    verdicts: list[str] = []
    for r in results:
        ratios = ["", "", ""]
        b, a = by.get((r.backend, "b")), by.get((r.backend, "a"))
        if r.kind in ("m", "n") and b is not None and a is not None:
            ratios = [
                f"{r.throughput / b.throughput:.2f}",
                f"{r.pct(99) / b.pct(99):.2f}",
                f"{r.throughput / a.throughput:.2f}",
            ]
            if r.backend == "postgres":
                verdicts.append(_verdict(r, b))
        lines.append(
            f"{r.backend:<9} {r.variant:<36} {r.n:>5} {r.concurrency:>4} {r.throughput:>7.0f} "
            f"{r.pct(50):>8.1f} {r.pct(99):>8.1f} {r.pct(99.9):>8.1f} "
            f"{r.server_cpu_ms:>7.2f} {r.busy * 100:>4.0f}% "
            f"{ratios[0]:>6} {ratios[1]:>6} {ratios[2]:>6}"
        )
    lines += [
        "req/s and latencies: measured by the load generator (another process), request sent "
        "to reply read; with N <= 1000, p99.9 is the maximum",
        "srv cpu: CPU ms of the server process per post; busy: share of all CPUs busy during "
        "the phase (server, database, Redis, load generator together)",
        "thr/b, p99/b, thr/a: memberbot / baseline (b) or (a)",
        *verdicts,
    ]
    return "\n".join(lines)


def _verdict(m: Measured, b: Measured) -> str:
    thr, p99, p999 = m.throughput / b.throughput, m.pct(99) / b.pct(99), m.pct(99.9)
    checks = [
        ("thr/b >= 0.50", thr >= 0.5, f"{thr:.2f}"),
        ("p99/b <= 2.00", p99 <= 2.0, f"{p99:.2f}"),
        ("p99.9 < 1000 ms", p999 < 1000, f"{p999:.0f} ms"),
    ]
    parts = [f"{name}: {value} {'met' if ok else 'NOT met'}" for name, ok, value in checks]
    scope = (
        "" if m.concurrency == 50 else f" (aim is stated for C=50; this run is C={m.concurrency})"
    )
    return f"aim ({m.variant}): " + "; ".join(parts) + scope


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(
        __doc__, members=1000, warmup=200, unit="openids", in_flight="posts", child=True
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        help="also serve with --workers N (PostgreSQL + Redis only; 1: skip it)",
    )
    args = parser.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    if not sizes_ok(args):
        return 2
    print(
        f"memberbot WeChat webhook bench {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; servers in child processes"
    )
    print(box_note())
    results = run_backends(bench_backend, args)
    if results is None:
        return 1
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
