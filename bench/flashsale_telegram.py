"""Flash-sale button presses end to end: N members pressing a group announcement's claim button
(callback_query "fs:<code>") through POST /telegram of `memberbot serve`, at C in flight.

(b) of issue 11. `memberbot serve` runs in a child process in webhook mode (bench/telegram.py's
`serve_memberbot`), its Bot API a fake in this (the load generator's) process that also notes
every answerCallbackQuery. Before the server starts, each backend gets a fresh database, a
community with a Telegram group chat id, N members in it (as first contact on "telegram" would
create them) and a live sale of S units (bot.admin.flashsales.create_sale, as the API does).

A press's answer time runs from the start of its POST to the arrival of answerCallbackQuery for
its callback id at the fake, or to the POST's response when that carries the answer (a Bot API
call in a webhook's response, which Telegram makes: how memberbot answers a press in a group);
the POST's own latency (the webhook answers 200 after the update
is handled) is reported too. The run fails unless every press got exactly one answer, every
POST a 200, memberbot logged no handler error, exactly min(N, S) units were won (toasts, claim
rows and the sale's counter agree) and no member holds more than one.

A press in a group is answered by its toast as soon as the claim is decided; the winner's
claim code follows privately through the outbox, whose sends (at most 30 messages/s, Telegram's
limit) no longer hold the answers back. `--no-rate-limit` lifts that limit in the child (as
bench/telegram.py does).

Usage: .venv/bin/python bench/flashsale_telegram.py [--members 2000] [--concurrency 200]
       [--stock 200] [--backend both] [--no-rate-limit] [--workers 1]
Only the given DSN / Redis URL and 127.0.0.1 are contacted; every phase has a deadline.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ (the script's folder, first on sys.path) must not shadow python-telegram-bot with
# bench/telegram.py. Appended first so that the removal never fails.
sys.path.append(str(Path(__file__).resolve().parent))
sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import itertools
import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from bench._common import (
    BenchError,
    Phase,
    Server,
    Usage,
    bench_parser,
    box_note,
    check_prefix_used,
    child_env,
    create_members,
    forget_keys,
    metric,
    migrate,
    percentile,
    run_backends,
    run_phase,
    running,
    scratch_postgres,
    scratch_sqlite,
    serve_memberbot,
    sizes_ok,
    unique_prefix,
    with_database,
)
from bench.telegram import (
    CHANNEL,
    SECRET,
    SECRET_HEADER,
    TIMEZONE,
    TOKEN,
    FakeBotAPI,
    _decode,
    _lift_rate_limits,
    _reply,
)
from bot.admin import flashsales as admin_sales
from bot.app import build_core
from bot.settings import Settings
from storage import communities
from storage.cache import Keys
from storage.db import Database
from storage.models import FlashClaim, FlashSale

SCRIPT = Path(__file__).resolve()
GROUP_CHAT = -1_001_234_567_890
USER_BASE = 300_000_000
WON, SOLD_OUT = "You got", "sold out"


class FakeFlashAPI(FakeBotAPI):
    """bench/telegram.py's fake, also noting each answerCallbackQuery (time and toast)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, list[str]] = {}
        self.answered: dict[str, asyncio.Future[float]] = {}

    def expect_answer(self, query_id: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.answered[query_id] = future
        return future

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.perf_counter()
        if request.match_info["method"].lower() != "answercallbackquery":
            return await super()._handle(request)
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = {k: _decode(v) for k, v in (await request.post()).items()}
        self.note_answer(params, at)
        return _reply({"ok": True, "result": True})

    def note_answer(self, params: dict[str, object], at: float) -> None:
        """An answerCallbackQuery: called by the bot, or made by Telegram from the webhook's
        response (which is how memberbot answers a press in a group)."""
        self.calls["answercallbackquery"] += 1
        query_id = str(params.get("callback_query_id"))
        self.answers.setdefault(query_id, []).append(str(params.get("text") or ""))
        future = self.answered.pop(query_id, None)
        if future is not None and not future.done():
            future.set_result(at)


def child(config: dict[str, object]) -> int:
    patch = _lift_rate_limits if config["no_rate_limit"] else None
    workers = int(str(config.get("workers", 1)))
    return serve_memberbot(int(str(config["port"])), str(config["prefix"]), patch, workers)


_update_ids = itertools.count(1)


def press(user_id: int, code: str, query_id: str) -> bytes:
    """A callback_query update: the member pressed the announcement's button in the group."""
    n = next(_update_ids)
    user = {"id": user_id, "is_bot": False, "first_name": f"u{user_id}", "language_code": "en"}
    message = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": {"id": GROUP_CHAT, "type": "supergroup", "title": "Bench group"},
    }
    query = {
        "id": query_id,
        "from": user,
        "chat_instance": "bench",
        "data": f"fs:{code}",
        "message": message,
    }
    return json.dumps({"update_id": n, "callback_query": query}).encode()


@dataclass
class Result:
    backend: str
    n: int
    concurrency: int
    stock: int
    phase: Phase  # latencies: POST start to answerCallbackQuery at the fake
    posts: list[float]  # POST start to its 200
    won: int
    server_cpu: float
    busy: float

    @property
    def throughput(self) -> float:
        return self.n / self.phase.seconds


async def drive(
    server: Server, fake: FakeFlashAPI, users: Sequence[int], code: str, args: argparse.Namespace
) -> tuple[Phase, list[float], float, float]:
    ids = [f"q{user}" for user in users]
    bodies = [press(user, code, ids[i]) for i, user in enumerate(users)]
    posts: list[float] = []
    refused: list[str] = []
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeouts = aiohttp.ClientTimeout(total=args.timeout)
    headers = {"Content-Type": "application/json", SECRET_HEADER: SECRET}
    async with aiohttp.ClientSession(connector=connector, timeout=timeouts) as session:

        async def call(i: int) -> float:
            answered = fake.expect_answer(ids[i])
            started = time.perf_counter()
            async with session.post(
                f"{server.url}/telegram", data=bodies[i], headers=headers
            ) as response:
                body = await response.read()
                if response.status != 200:
                    refused.append(f"{users[i]}: HTTP {response.status}")
                    # No answer will come for it: say so now, with the server's last words.
                    raise BenchError(
                        f"press {ids[i]}: HTTP {response.status} {body[:200]!r}\n"
                        + server.log_tail()
                    )
                elif response.content_type == "application/json":
                    # A Bot API call in the webhook's response: Telegram would make it now.
                    call = json.loads(body)
                    if call.get("method") == "answerCallbackQuery":
                        fake.note_answer(call, time.perf_counter())
            posts.append(time.perf_counter() - started)
            try:
                at = await asyncio.wait_for(answered, 60)
            except TimeoutError:
                raise BenchError(
                    f"press {ids[i]} not answered within 60 s (its POST: HTTP 200 "
                    f"{body[:200]!r})\n" + server.log_tail()
                ) from None
            return at - started

        usage = Usage(server.pid)
        usage.start()
        phase = await run_phase(call, range(len(users)), args.concurrency, args.timeout)
        usage.stop()
    if refused:
        raise BenchError(f"{len(refused)} updates refused, first: {refused[0]}")
    return phase, posts, usage.cpu, usage.busy


def check_answers(fake: FakeFlashAPI, users: Sequence[int], due: int) -> int:
    """One answer per press; min(N, S) of them "won", the rest "sold out"; how many won."""
    wrong = [q for q in (f"q{u}" for u in users) if len(fake.answers.get(q, [])) != 1]
    if wrong:
        raise BenchError(f"{len(wrong)} presses not answered exactly once, e.g. {wrong[:3]}")
    toasts = [fake.answers[f"q{u}"][0] for u in users]
    won = sum(WON in text for text in toasts)
    other = [text for text in toasts if WON not in text and SOLD_OUT not in text]
    if other:
        raise BenchError(f"{len(other)} answers neither won nor sold out: {other[0]!r}")
    if won != due:
        raise BenchError(f"{won} presses answered as won, {due} due")
    return won


async def check_claims(url: str, code: str, due: int) -> None:
    """Exactly `due` claim rows, one member each, and the sale's counter saying the same."""
    db = Database(url, pool_size=1)
    try:
        async with db.sessions() as session:
            sale = (
                await session.execute(select(FlashSale).where(FlashSale.code == code))
            ).scalar_one()
            per_member = dict(
                (
                    await session.execute(
                        select(FlashClaim.member_id, func.count())
                        .where(FlashClaim.sale_id == sale.id)
                        .group_by(FlashClaim.member_id)
                    )
                ).all()
            )
    finally:
        await db.close()
    rows = sum(per_member.values())
    if not rows == sale.claimed == due or sale.claimed > sale.stock:
        raise BenchError(f"{rows} claim rows, sale counter {sale.claimed}, {due} due")
    if per_member and max(per_member.values()) > 1:
        raise BenchError("a member holds more than the limit of 1")


async def bench_backend(backend: str, args: argparse.Namespace) -> list[Result]:
    if backend == "postgres":
        async with scratch_postgres(args.pg_dsn) as dsn:
            return [
                await _bench(backend, with_database(dsn, urlsplit(dsn).path[1:], "asyncpg"), args)
            ]
    async with scratch_sqlite() as path:
        return [await _bench(backend, f"sqlite+aiosqlite:///{path}", args)]


async def _prepare(
    url: str, redis_url: str | None, prefix: str, users: Sequence[int], stock: int
) -> str:
    """Community with the group, members in it, a live sale; its code."""
    now = datetime.now(UTC)
    ids = await create_members(url, CHANNEL, [str(u) for u in users], now, 50)
    settings = Settings(
        database_url=url, redis_url=redis_url, default_locale="en", timezone=TIMEZONE
    )
    core = await build_core(settings, keys=Keys(prefix=prefix))
    try:
        services = core.services
        async with services.db.transaction() as session:
            values = {"names": {"en": "Bench"}, "telegram_chat_id": GROUP_CHAT}
            found, _ = await communities.upsert(session, "bench", values, now)
            for member_id in ids.values():
                await communities.join(session, found.id, member_id, CHANNEL, now)
        sale = {"community": "bench", "title": "Beans", "price": "9.90", "stock": stock,
                "per_member_limit": 1, "duration_minutes": 60}  # fmt: skip
        created = await admin_sales.create_sale(services, sale)
    finally:
        await core.close()
    return str(created["code"])


async def _bench(backend: str, url: str, args: argparse.Namespace) -> Result:
    await migrate(url)
    redis_url = args.redis_url if backend == "postgres" else None
    prefix = unique_prefix()
    users = [USER_BASE + i for i in range(args.members)]
    fake = FakeFlashAPI()
    await fake.start()
    try:
        code = await _prepare(url, redis_url, prefix, users, args.stock)
        config = {"prefix": prefix, "no_rate_limit": args.no_rate_limit, "workers": args.workers}
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
        async with running(server):
            phase, posts, cpu, busy = await drive(server, fake, users, code, args)
            await asyncio.sleep(1.0)  # a second answer to a press would arrive now
            errors = await metric(server.url, "memberbot_handler_errors_total")
            if errors:
                raise BenchError(f"{errors:.0f} handler errors\n" + server.log_tail())
        due = min(args.members, args.stock)
        won = check_answers(fake, users, due)
        await check_claims(url, code, due)
    finally:
        await fake.close()
        removed = await forget_keys(redis_url, prefix) if redis_url else -1
    if redis_url:
        check_prefix_used(removed)
    return Result(backend, args.members, args.concurrency, args.stock, phase, posts, won, cpu, busy)


def report(results: list[Result], rate_limited: bool) -> str:
    lines = [
        "| backend | N / C / stock | presses/s | answer p50 / p99 ms | POST p50 / p99 ms "
        "| won | srv cpu ms/press | busy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lat = r.phase.latencies
        lines.append(
            f"| {'PostgreSQL + Redis' if r.backend == 'postgres' else 'SQLite'} "
            f"| {r.n} / {r.concurrency} / {r.stock} | {r.throughput:.0f} "
            f"| {percentile(lat, 50):.0f} / {percentile(lat, 99):.0f} "
            f"| {percentile(r.posts, 50):.0f} / {percentile(r.posts, 99):.0f} "
            f"| {r.won} | {r.server_cpu / r.n * 1000:.2f} | {r.busy * 100:.0f}% |"
        )
    lines.append(
        "answer: POST start to answerCallbackQuery at the fake; every press answered once, "
        "0 oversell; "
        + (
            "outbound limit 30 sends/s ON (the winners' codes follow through the outbox)"
            if rate_limited
            else "outbound limits LIFTED (--no-rate-limit)"
        )
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser(
        __doc__, members=2000, warmup=0, unit="presses", in_flight="presses", child=True
    )
    parser.set_defaults(concurrency=200)
    parser.add_argument("--stock", type=int, default=200, help="units on sale (S)")
    parser.add_argument("--workers", type=int, default=1, help="memberbot serve --workers N")
    parser.add_argument(
        "--no-rate-limit",
        action="store_true",
        help="lift memberbot's outbound send limits (30/s, 1/s per chat) in the server",
    )
    args = parser.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    if not sizes_ok(args) or args.stock < 1:
        return 2
    if args.no_rate_limit and args.workers > 1:
        # The lift is a patch of the serving process; --workers N starts its own afresh.
        print("--no-rate-limit works with --workers 1 only")
        return 2
    print(
        f"memberbot flash-sale button bench {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; {box_note()}"
    )
    results = run_backends(bench_backend, args)
    if results is None:
        return 1
    print(report(results, not args.no_rate_limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
