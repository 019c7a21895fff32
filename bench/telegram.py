"""Telegram webhook throughput and latency: "/checkin" updates posted to POST /telegram of the
real app, replies delivered to a fake Bot API; against a bare webhook in the same run.

* memberbot: `memberbot serve` (bot.cli.main) in a child process, webhook mode, settings from
  MEMBERBOT_* variables, TELEGRAM_API_BASE pointing at the fake; its Redis keys get a unique
  prefix so they can be removed afterwards. SQLite uses the in-process cache, PostgreSQL Redis.
  The app answers the POST at once and sends the reply later through python-telegram-bot,
  whose outbound sends memberbot limits to 30/s overall and 1/s per chat
  (bot/channels/telegram_flow.py, Telegram's own limits): throughput is capped there BY
  DESIGN. `--no-rate-limit` raises both limits (telegram_flow.GLOBAL_PER_SECOND and
  PRIVATE_PER_SECOND) in the child to compare framework overhead instead; the limiter still
  runs (its cache counters included), it just never makes a send wait.
* baseline: a bare aiohttp webhook in a child process that checks the secret header, parses
  the update JSON, answers 200 and calls sendMessage on the same fake with aiohttp.ClientSession;
  no bot framework, no database, no rate limit.
* the fake Bot API runs in this (the load generator's) process on 127.0.0.1; it answers
  getMe, setMyCommands, setWebhook and sendMessage, and notes when each sendMessage arrives.

Each backend gets a fresh database (migrated) and W + N members created as first contact on
"telegram" would create them. Per server: W warm-up updates, then N measured updates, one per
user, with at most C updates in flight: a worker posts an update and waits for its chat's
sendMessage before posting the next. Latency is from the start of the POST to the arrival of
that chat's sendMessage at the fake. Afterwards each chat must have received exactly one
message with the check-in text, every POST must have been answered 200, memberbot must have
logged no handler error and each measured member must hold exactly one ledger entry, one
check-in and a balance of the day-1 reward (5 points by default). Any difference fails the run.

Usage: .venv/bin/python bench/telegram.py [--members 1000] [--concurrency 50]
       [--backend both] [--no-rate-limit]
Only the given DSN / Redis URL and 127.0.0.1 are contacted; every phase has a deadline.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ (the script's folder, first on sys.path) must not shadow packages: this file is not
# python-telegram-bot. Appended first so that the removal never fails.
sys.path.append(str(Path(__file__).resolve().parent))
sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import hmac
import itertools
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from bench._common import (
    ROOT,
    BenchError,
    Measured,
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
    free_port,
    metric,
    migrate,
    percentile,
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
)
from bot.core.clock import local_day
from bot.settings import load_rules
from handlers.checkin import reward_for
from storage.db import Database
from storage.models import Identity, LedgerEntry

CHANNEL = "telegram"
TOKEN = "4242:BENCH"
SECRET = "bench-secret"
BOT_ID = 4242
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TIMEZONE = "Asia/Shanghai"
MEASURED_BASE, WARMUP_BASE = 100_000_000, 200_000_000  # user (= private chat) ids
SCRIPT = Path(__file__).resolve()
BARE_REPLY = "Checked in! +{points} points, 1-day streak."
UNLIMITED = 1_000_000


# ----------------------------------------------------------------------------------- fake API


@dataclass(frozen=True)
class Delivery:
    chat_id: int
    text: str
    at: float  # time.perf_counter() of this process when the fake received it
    wall: float  # time.time() then, for the per-second count


class FakeBotAPI:
    """The few Bot API methods the two servers call; sendMessage arrivals wake their waiter."""

    def __init__(self) -> None:
        self.port = free_port()
        self.deliveries: list[Delivery] = []
        self.waiting: dict[int, asyncio.Future[float]] = {}
        self.calls: Counter[str] = Counter()
        self._message_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def expect(self, chat_id: int) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[chat_id] = future
        return future

    async def _handle(self, request: web.Request) -> web.Response:
        at, wall = time.perf_counter(), time.time()
        if request.match_info["token"] != TOKEN:
            return _reply({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
        method = request.match_info["method"].lower()
        self.calls[method] += 1
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = {k: _decode(v) for k, v in (await request.post()).items()}
        if method == "getme":
            return _reply({"ok": True, "result": _me()})
        if method != "sendmessage":  # setMyCommands, setWebhook, deleteWebhook, ...
            return _reply({"ok": True, "result": True})
        chat_id, text = int(params["chat_id"]), str(params.get("text", ""))
        self.deliveries.append(Delivery(chat_id, text, at, wall))
        future = self.waiting.pop(chat_id, None)
        if future is not None and not future.done():
            future.set_result(at)
        message = {
            "message_id": next(self._message_ids),
            "date": int(wall),
            "chat": {"id": chat_id, "type": "private"},
            "from": _me(),
            "text": text,
        }
        return _reply({"ok": True, "result": message})


def _me() -> dict[str, Any]:
    return {"id": BOT_ID, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}


def _decode(raw: Any) -> Any:
    """python-telegram-bot form-encodes parameters, JSON-encoding the non-strings."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _reply(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


# ----------------------------------------------------------------------------------- baseline


def bare_app(config: dict[str, Any]) -> web.Application:
    """Secret header, update JSON, 200 at once; sendMessage on the fake in a task."""
    send_url = f"{config['api']}/bot{TOKEN}/sendMessage"
    text = BARE_REPLY.format(points=config["points"])
    tasks: set[asyncio.Task[None]] = set()
    holder: dict[str, aiohttp.ClientSession] = {}
    app = web.Application(client_max_size=64 * 1024)

    async def startup(_app: web.Application) -> None:
        holder["session"] = aiohttp.ClientSession()

    async def cleanup(_app: web.Application) -> None:
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        await holder["session"].close()

    async def send(chat_id: int) -> None:
        payload = {"chat_id": chat_id, "text": text}
        try:
            async with holder["session"].post(send_url, json=payload) as response:
                if response.status != 200:
                    print(f"sendMessage {chat_id}: HTTP {response.status}", file=sys.stderr)
                await response.read()
        except aiohttp.ClientError as exc:
            print(f"sendMessage {chat_id}: {exc!r}", file=sys.stderr)

    async def webhook(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, SECRET.encode()):
            return web.Response(status=403, text="bad secret")
        try:
            update = json.loads(await request.read())
            chat_id = int(update["message"]["chat"]["id"])
            command = update["message"]["text"]
        except (ValueError, KeyError, TypeError):
            return web.Response(status=400, text="bad update")
        if command != "/checkin":
            return web.Response(status=400, text="not a check-in")
        task = asyncio.create_task(send(chat_id))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return web.Response(text="ok")

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_post("/telegram", webhook)
    app.router.add_get("/healthz", healthz)
    return app


def _lift_rate_limits() -> None:
    from bot.channels import telegram_flow

    telegram_flow.GLOBAL_PER_SECOND = UNLIMITED
    telegram_flow.PRIVATE_PER_SECOND = UNLIMITED


def child(config: dict[str, Any]) -> int:
    port = int(config["port"])
    if config["mode"] == "memberbot":
        patch = _lift_rate_limits if config["no_rate_limit"] else None
        return serve_memberbot(port, str(config["prefix"]), patch)
    return serve_app(bare_app(config), port)


# ----------------------------------------------------------------------------------- measuring

_update_ids = itertools.count(1)


def update(user_id: int) -> bytes:
    n = next(_update_ids)
    user = {"id": user_id, "is_bot": False, "first_name": f"u{user_id}", "language_code": "en"}
    message = {
        "message_id": n,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": user["first_name"]},
        "from": user,
        "text": "/checkin",
        "entities": [{"type": "bot_command", "offset": 0, "length": 8}],
    }
    return json.dumps({"update_id": n, "message": message}).encode()


@dataclass
class Outcome:
    measured: Measured
    ack_p50: float  # ms from POST to its 200
    peak: int  # most sendMessage arrivals within one clock second (measured phase)


async def drive(
    server: Server, fake: FakeBotAPI, users: Sequence[int], concurrency: int, timeout: float
) -> tuple[Phase, list[float], float, float]:
    """Post /checkin once per user at `concurrency`, each worker waiting for its reply."""
    bodies = [update(user) for user in users]
    acks: list[float] = []
    refused: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeouts = aiohttp.ClientTimeout(total=60)
    headers = {"Content-Type": "application/json", SECRET_HEADER: SECRET}
    async with aiohttp.ClientSession(connector=connector, timeout=timeouts) as session:

        async def call(i: int) -> float:
            arrived = fake.expect(users[i])
            started = time.perf_counter()
            async with session.post(
                f"{server.url}/telegram", data=bodies[i], headers=headers
            ) as response:
                await response.read()
                if response.status != 200:
                    refused.append(f"{users[i]}: HTTP {response.status}")
            acks.append(time.perf_counter() - started)
            try:
                at = await asyncio.wait_for(arrived, 60)
            except TimeoutError:
                raise BenchError(f"no sendMessage to {users[i]} within 60 s") from None
            return at - started

        usage = Usage(server.pid)
        usage.start()
        phase = await run_phase(call, range(len(users)), concurrency, timeout)
        usage.stop()
    if refused:
        raise BenchError(f"{len(refused)} updates refused, first: {refused[0]}")
    return phase, acks, usage.cpu, usage.busy


async def measure(
    backend: str,
    variant: str,
    kind: str,
    server: Server,
    fake: FakeBotAPI,
    warm: Sequence[int],
    measured: Sequence[int],
    args: argparse.Namespace,
    expected: str,
) -> Outcome:
    fake.deliveries.clear()
    async with running(server):
        await drive(server, fake, warm, args.concurrency, args.timeout)
        start = len(fake.deliveries)
        phase, acks, cpu, busy = await drive(server, fake, measured, args.concurrency, args.timeout)
        await asyncio.sleep(1.0)  # a duplicate send would arrive now
        errors = await metric(server.url, "memberbot_handler_errors_total") if kind == "m" else 0
    if errors:
        raise BenchError(f"{variant}: {errors:.0f} handler errors")
    got = Counter(d.chat_id for d in fake.deliveries)
    wanted = Counter([*warm, *measured])
    if got != wanted:
        extra, missing = got - wanted, wanted - got
        raise BenchError(
            f"{variant}: sends differ from one per chat: {sum(extra.values())} extra "
            f"(e.g. {list(extra)[:3]}), {sum(missing.values())} missing"
        )
    wrong = [d for d in fake.deliveries if expected not in d.text]
    if wrong:
        raise BenchError(f"{variant}: {len(wrong)} replies without {expected!r}: {wrong[0].text!r}")
    per_second = Counter(int(d.wall) for d in fake.deliveries[start:])
    result = Measured(backend, variant, kind, args.concurrency, phase, cpu, busy)
    return Outcome(result, percentile(acks, 50), max(per_second.values()))


async def verify_memberbot(url: str, n: int, day: date, points: int) -> None:
    """Each measured user: exactly one ledger entry of `points`, one check-in, that balance."""
    ids = select(Identity.member_id).where(  # measured ids are 1xxxxxxxx, warm-up 2xxxxxxxx
        Identity.channel == CHANNEL, Identity.external_id.like(f"{str(MEASURED_BASE)[0]}%")
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
            f"memberbot: expected {n} users with one ledger entry of {points}: "
            f"exactly that={exact} (members with ledger entries={len(per_member)}), "
            f"check-in rows={rows}, members with {points} points={right}"
        )


# ----------------------------------------------------------------------------------- one backend


async def bench_backend(backend: str, args: argparse.Namespace) -> list[Outcome]:
    if backend == "postgres":
        async with scratch_postgres(args.pg_dsn) as dsn:
            url = with_database(dsn, urlsplit(dsn).path[1:], "asyncpg")
            return await _bench(backend, url, args)
    async with scratch_sqlite() as path:
        return await _bench(backend, f"sqlite+aiosqlite:///{path}", args)


async def _bench(backend: str, url: str, args: argparse.Namespace) -> list[Outcome]:
    await migrate(url)
    rules_file = ROOT / "memberbot.toml"  # what `memberbot serve` reads from its cwd (ROOT)
    rules = load_rules(rules_file if rules_file.exists() else None)
    now = datetime.now(UTC)
    today = local_day(now, ZoneInfo(TIMEZONE))
    points = reward_for(rules, rules.tiers[0].name, None, 1, today)
    warm = [WARMUP_BASE + i for i in range(args.warmup)]
    measured = [MEASURED_BASE + i for i in range(args.members)]
    await create_members(url, CHANNEL, [str(u) for u in warm + measured], now, args.concurrency)
    redis_url = args.redis_url if backend == "postgres" else None
    prefix = unique_prefix()
    fake = FakeBotAPI()
    await fake.start()
    outcomes: list[Outcome] = []
    try:
        config = {"mode": "memberbot", "prefix": prefix, "no_rate_limit": args.no_rate_limit}
        server = Server(SCRIPT, config, {})
        server.env = child_env(
            {
                "MEMBERBOT_DATABASE_URL": url,
                "MEMBERBOT_REDIS_URL": redis_url or "",
                "MEMBERBOT_DEFAULT_LOCALE": "en",
                "MEMBERBOT_TIMEZONE": TIMEZONE,
                "MEMBERBOT_TELEGRAM_TOKEN": TOKEN,
                "MEMBERBOT_TELEGRAM_API_BASE": fake.url,
                "MEMBERBOT_TELEGRAM_WEBHOOK_URL": f"{server.url}/telegram",
                "MEMBERBOT_TELEGRAM_WEBHOOK_SECRET": SECRET,
            }
        )
        cache = "Redis" if redis_url else "memory cache"
        limit = "no rate limit" if args.no_rate_limit else "30/s limit"
        variant = f"memberbot ({cache}, {limit})"
        expected = f"Checked in! +{points} points"
        outcomes.append(
            await measure(backend, variant, "m", server, fake, warm, measured, args, expected)
        )
        await verify_memberbot(url, len(measured), today, points)
        if fake.calls["setwebhook"] < 1:
            raise BenchError("memberbot never called setWebhook on the fake")

        bare = Server(SCRIPT, {"mode": "bare", "api": fake.url, "points": points}, child_env({}))
        expected = f"Checked in! +{points} points"
        outcomes.append(
            await measure(
                backend, "baseline bare aiohttp", "b", bare, fake, warm, measured, args, expected
            )
        )
    finally:
        await fake.close()
        removed = await forget_keys(redis_url, prefix) if redis_url else -1
    check_prefix_used(removed)
    return outcomes


# ----------------------------------------------------------------------------------- report


def report(outcomes: list[Outcome], rate_limited: bool) -> str:
    head = (
        f"{'backend':<9} {'variant':<38} {'N':>5} {'C':>4} {'msg/s':>7} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'ack p50':>7} {'peak/s':>6} {'srv cpu':>7} {'busy':>5} "
        f"{'thr/b':>6} {'p99/b':>6}"
    )
    lines = [head, "-" * len(head)]
    base = {o.measured.backend: o.measured for o in outcomes if o.measured.kind == "b"}
    for o in outcomes:
        r = o.measured
        ratios = ["", ""]
        b = base.get(r.backend)
        if r.kind == "m" and b is not None:
            ratios = [f"{r.throughput / b.throughput:.2f}", f"{r.pct(99) / b.pct(99):.2f}"]
        lines.append(
            f"{r.backend:<9} {r.variant:<38} {r.n:>5} {r.concurrency:>4} {r.throughput:>7.0f} "
            f"{r.pct(50):>8.1f} {r.pct(99):>8.1f} {o.ack_p50:>7.1f} {o.peak:>6} "
            f"{r.server_cpu_ms:>7.2f} {r.busy * 100:>4.0f}% {ratios[0]:>6} {ratios[1]:>6}"
        )
    lines += [
        "latency: start of the POST /telegram to the arrival of that chat's sendMessage at the "
        "fake Bot API (both in the load generator's process); msg/s: replies delivered per s",
        "ack p50: POST to its 200 (the webhook answers before the work); peak/s: most "
        "sendMessage arrivals within one clock second",
        "srv cpu: CPU ms of the server process per update; busy: share of all CPUs busy "
        "during the phase; thr/b, p99/b: memberbot / baseline",
    ]
    if rate_limited:
        lines.append(
            "memberbot runs with its outbound limit of 30 sends/s (Telegram's): its msg/s and "
            "latency measure that cap, not framework overhead (see --no-rate-limit); the "
            "baseline has no limit"
        )
    else:
        lines.append(
            "--no-rate-limit: memberbot's 30/s and 1/s-per-chat limits raised to "
            f"{UNLIMITED}/s in the server (limiter and its counters still run): framework "
            "overhead, not production behaviour"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(
        __doc__, members=1000, warmup=100, unit="users", in_flight="updates", child=True
    )
    parser.add_argument(
        "--no-rate-limit",
        action="store_true",
        help="lift memberbot's outbound send limits (30/s, 1/s per chat) in the server",
    )
    args = parser.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    if not sizes_ok(args):
        return 2
    print(
        f"memberbot Telegram webhook bench {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; servers in child "
        f"processes, fake Bot API in this one; "
        + ("outbound rate limit LIFTED" if args.no_rate_limit else "outbound rate limit ON")
    )
    print(box_note())
    outcomes = run_backends(bench_backend, args)
    if outcomes is None:
        return 1
    print(report(outcomes, not args.no_rate_limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
