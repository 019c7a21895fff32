"""Helpers shared by the benches: timed phases, scratch databases, bare check-in SQL, members,
server subprocesses and CPU counters.

Nothing here contacts anything but the DSN / Redis URL it is given and 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import aiosqlite
import asyncpg
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import members
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Checkin, Identity, Member

ROOT = Path(__file__).resolve().parents[1]
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=30000",
)


@dataclass(frozen=True)
class Phase:
    """One timed run: wall seconds, per-call latencies, CPU seconds of this process."""

    seconds: float
    latencies: list[float]
    cpu: float


class BenchError(Exception):
    """The benchmark measured something other than successful check-ins."""


def percentile(latencies: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of latencies in seconds, in milliseconds."""
    ordered = sorted(latencies)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1] * 1000


async def run_phase(
    call: Callable[[int], Awaitable[object]],
    items: Sequence[int],
    concurrency: int,
    deadline: float,
) -> Phase:
    """Run `call(item)` for every item with at most `concurrency` in flight.

    A call's latency is the wall time it took, unless it returns a float: then that is its
    latency in seconds (for replies that arrive elsewhere than in the call's return).
    """
    latencies: list[float] = []
    pending = iter(items)

    async def worker() -> None:
        for item in pending:  # the iterator is shared: each worker takes the next item
            started = time.perf_counter()
            measured = await call(item)
            elapsed = time.perf_counter() - started
            latencies.append(measured if isinstance(measured, float) else elapsed)

    started, cpu = time.perf_counter(), time.process_time()
    async with asyncio.timeout(deadline):
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Phase(time.perf_counter() - started, latencies, time.process_time() - cpu)


# ----------------------------------------------------------------------------------- databases


def with_database(dsn: str, name: str, driver: str | None = None) -> str:
    parts = urlsplit(dsn)
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return urlunsplit((scheme, parts.netloc, f"/{name}", parts.query, ""))


def plain_dsn(url: str) -> str:
    """postgresql+asyncpg://... -> postgresql://... (what asyncpg itself takes)."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))


@asynccontextmanager
async def scratch_postgres(admin_dsn: str) -> AsyncIterator[str]:
    """A fresh database next to `admin_dsn`'s; dropped afterwards. Yields its plain DSN."""
    name = f"memberbot_bench_{os.getpid()}"
    admin = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    try:
        yield with_database(admin_dsn, name)
    finally:
        admin = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()


@asynccontextmanager
async def scratch_sqlite() -> AsyncIterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="memberbot-bench-"))
    try:
        yield folder / "bench.db"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def migrate(url: str) -> None:
    db = Database(url, pool_size=1)
    try:
        await upgrade(db)
    finally:
        await db.close()


def engine_connections(db: Database) -> int:
    """How many connections memberbot's engine may hold at once (pool_size + max_overflow)."""
    pool = db.engine.pool
    return int(pool.size() + getattr(pool, "_max_overflow", 0))


def writer_connections(url: str) -> int:
    """engine_connections() of the engine memberbot would build for `url` (none opened)."""
    return engine_connections(Database(url))


def unique_prefix() -> str:
    """A Redis key prefix of this run's own; MEMBERBOT_REDIS_PREFIX takes 32 characters."""
    return f"mbbench:{uuid.uuid4().hex[:20]}"


async def forget_keys(redis_url: str, prefix: str) -> int:
    """Delete every key under `prefix:` (the benches' unique Redis prefixes); how many."""
    client = Redis.from_url(redis_url)
    removed = 0
    try:
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            removed += await client.delete(key)
    finally:
        await client.aclose()
    return removed


def check_prefix_used(removed: int) -> None:
    """A memberbot child on Redis always writes keys (delivery claims, flood counters)."""
    if not removed:
        raise BenchError(
            "memberbot wrote no Redis key under the bench's prefix: the Keys patch of "
            "bot.cli.runtime.build_core (serve_memberbot) no longer applies; its keys may be left "
            "under the default prefix"
        )


async def create_members(
    url: str, channel: str, names: Sequence[str], now: datetime, concurrency: int
) -> dict[str, int]:
    """Members as first contact would create them on `channel`; external id -> member id."""
    db = Database(url)
    try:

        async def create(i: int) -> None:
            await members.get_or_create(db, channel, names[i], now, display_name=names[i])

        await run_phase(create, range(len(names)), concurrency, deadline=600)
        async with db.sessions() as session:
            rows = await session.execute(
                select(Identity.external_id, Identity.member_id).where(Identity.channel == channel)
            )
            ids = {ext: member_id for ext, member_id in rows.all()}
    finally:
        await db.close()
    return {name: ids[name] for name in names}


# ----------------------------------------------------------------------------------- bare SQL

PG_INSERT = (
    "INSERT INTO checkins (member_id, day, streak, points, created_at) VALUES ($1, $2, 1, $3, $4)"
)
PG_UPDATE = "UPDATE members SET points = points + $2 WHERE id = $1"
LITE_INSERT = (
    "INSERT INTO checkins (member_id, day, streak, points, created_at) VALUES (?, ?, 1, ?, ?)"
)
LITE_UPDATE = "UPDATE members SET points = points + ? WHERE id = ?"


class PgBaseline:
    """asyncpg pool; one transaction: INSERT check-in, UPDATE points."""

    def __init__(self, pool: asyncpg.Pool, day: date, points: int, now: datetime) -> None:
        self.pool, self.day, self.points, self.now = pool, day, points, now

    async def __call__(self, member_id: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(PG_INSERT, member_id, self.day, self.points, self.now)
            await conn.execute(PG_UPDATE, member_id, self.points)


class LiteBaseline:
    """aiosqlite connections in a free list; BEGIN IMMEDIATE, INSERT, UPDATE, COMMIT."""

    def __init__(self, path: Path, size: int, day: date, points: int, now: datetime) -> None:
        self.path, self.size, self.day, self.points = path, size, day, points
        self.now = now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
        # A semaphore hands connections out in arrival order; a Queue would let the caller
        # that just returned one take it straight back and starve the others.
        self.turns = asyncio.Semaphore(size)
        self.idle: list[aiosqlite.Connection] = []
        self.all: list[aiosqlite.Connection] = []

    async def open(self) -> None:
        for _ in range(self.size):
            conn = await aiosqlite.connect(self.path, timeout=30, isolation_level=None)
            for pragma in SQLITE_PRAGMAS:
                await conn.execute(pragma)
            self.all.append(conn)
            self.idle.append(conn)

    async def close(self) -> None:
        for conn in self.all:
            await conn.close()

    async def __call__(self, member_id: int) -> None:
        async with self.turns:
            conn = self.idle.pop()
            try:
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    await conn.execute(
                        LITE_INSERT, (member_id, self.day.isoformat(), self.points, self.now)
                    )
                    await conn.execute(LITE_UPDATE, (self.points, member_id))
                except BaseException:
                    await conn.execute("ROLLBACK")
                    raise
                await conn.execute("COMMIT")
            finally:
                self.idle.append(conn)


# ----------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a live process and its live descendants
    (the serving processes of `serve --workers N`) have used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone meanwhile
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / _TICK
    return own + sum(process_cpu(child) for child in _children(pid))


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot; differences give the busy share."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class Usage:
    """CPU of one process and busy share of the machine between `start()` and `stop()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu, self.busy = 0.0, 0.0

    def start(self) -> None:
        self._cpu, self._busy = process_cpu(self.pid), machine_busy()

    def stop(self) -> None:
        busy, total = machine_busy()
        self.cpu = process_cpu(self.pid) - self._cpu
        self.busy = (busy - self._busy[0]) / max(1, total - self._busy[1])


@dataclass
class Measured:
    """One timed phase against one server."""

    backend: str
    variant: str
    kind: str  # "m" for memberbot, else a baseline's letter
    concurrency: int
    phase: Phase
    server_cpu: float  # CPU seconds of the server process during the phase
    busy: float  # share of the machine's CPU time that was busy during the phase

    @property
    def n(self) -> int:
        return len(self.phase.latencies)

    @property
    def throughput(self) -> float:
        return self.n / self.phase.seconds

    @property
    def server_cpu_ms(self) -> float:
        return self.server_cpu / self.n * 1000

    def pct(self, p: float) -> float:
        return percentile(self.phase.latencies, p)


async def checked_in(session: AsyncSession, ids: Any, day: date, points: int) -> tuple[int, int]:
    """(check-in rows on `day`, members holding exactly `points`) among the members `ids`."""
    rows = await session.scalar(
        select(func.count())
        .select_from(Checkin)
        .where(Checkin.member_id.in_(ids), Checkin.day == day)
    )
    right = await session.scalar(
        select(func.count()).select_from(Member).where(Member.id.in_(ids), Member.points == points)
    )
    return int(rows or 0), int(right or 0)


def bench_parser(
    doc: str, *, members: int, warmup: int, unit: str, in_flight: str, child: bool
) -> argparse.ArgumentParser:
    """The options every bench takes; `child` adds the internal one that runs a server."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=members, help=f"measured {unit} (N)")
    parser.add_argument("--concurrency", type=int, default=50, help=f"{in_flight} in flight (C)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--pg-dsn",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="a database to connect to for CREATE/DROP of the scratch database",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/14",
        help="Redis for the PostgreSQL run (keys under a unique prefix, removed)",
    )
    parser.add_argument("--warmup", type=int, default=warmup, help=f"warm-up {unit}, not counted")
    parser.add_argument("--timeout", type=float, default=300.0, help="deadline per phase, s")
    if child:
        parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one server
    return parser


def sizes_ok(args: argparse.Namespace) -> bool:
    if args.members < 1 or args.concurrency < 1 or args.warmup < 0:
        print("--members and --concurrency must be positive, --warmup not negative")
        return False
    return True


R = TypeVar("R")


def run_backends(
    bench_backend: Callable[[str, argparse.Namespace], Awaitable[list[R]]],
    args: argparse.Namespace,
) -> list[R] | None:
    """The bench on each chosen backend in turn; None, after saying why, when one fails."""
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    results: list[R] = []
    for backend in backends:
        try:
            results += asyncio.run(bench_backend(backend, args))
        except BenchError as exc:
            print(f"{backend}: FAILED: {exc}")
            return None
        except TimeoutError:
            print(f"{backend}: FAILED: a phase took longer than {args.timeout:.0f} s")
            return None
    return results


def box_note() -> str:
    """The machine's load when a run starts: the benches share it with whatever else runs."""
    one, five, _ = os.getloadavg()
    return f"load average before the run {one:.2f} (1 min), {five:.2f} (5 min)"


def child_env(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any MEMBERBOT_* setting, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMBERBOT_")}
    env.update(settings)
    env["PYTHONPATH"] = str(ROOT)
    return env


class Server:
    """A web server in a child process (`script --child CONFIG`), on 127.0.0.1:port."""

    def __init__(self, script: Path, config: dict[str, Any], env: Mapping[str, str]) -> None:
        self.port = free_port()
        self.config = {**config, "port": self.port}
        fd, name = tempfile.mkstemp(prefix="memberbot-bench-", suffix=".log")
        os.close(fd)
        self.log = Path(name)
        self.script, self.env = script, dict(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.spy: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return str(self.config.get("mode", self.script.stem))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    async def start(self, timeout: float = 30) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(self.script), "--child", json.dumps(self.config)],
                env=dict(self.env),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        probe = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=probe) as session:
            while True:
                if self.proc.poll() is not None:
                    raise BenchError(
                        f"server {self.name} exited with {self.proc.returncode}:\n"
                        + self.log_tail()
                    )
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            self._profile()
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"server {self.name} not ready in {timeout:.0f} s")
                await asyncio.sleep(0.1)

    def _profile(self) -> None:
        """With BENCH_PROFILE=<folder> (and py-spy installed next to this Python): py-spy
        samples the server and its children until it stops, as collapsed stacks in
        <folder>/<mode>-<pid>.txt (for a flame graph, or `sort | uniq`-style summaries)."""
        folder = os.environ.get("BENCH_PROFILE")
        if not folder or self.proc is None:
            return
        spy = Path(sys.executable).with_name("py-spy")
        out = Path(folder) / f"{self.name}-{self.proc.pid}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        options = ["--subprocesses", "--format", "raw", "--rate", "250", "--output", str(out)]
        self.spy = subprocess.Popen(
            [str(spy), "record", *options, "--pid", str(self.proc.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self, timeout: float = 20) -> None:
        if self.spy is not None:
            self.spy.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.spy.wait(10)
            self.spy = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.unlink(missing_ok=True)


@asynccontextmanager
async def running(server: Server) -> AsyncIterator[Server]:
    try:
        await server.start()
        yield server
    finally:
        server.stop()


async def metric(url: str, name: str) -> float:
    """Sum of a Prometheus metric's samples on a running memberbot (`/metrics`)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"{url}/metrics") as response,
    ):
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def serve_memberbot(
    port: int, prefix: str, patch: Callable[[], None] | None = None, workers: int = 1
) -> int:
    """In a child: `memberbot serve --workers N` (bot.cli.main, settings from MEMBERBOT_* in
    the environment), its Redis keys under `prefix` so the parent can remove them afterwards
    (and through MEMBERBOT_REDIS_PREFIX in the serving processes of --workers N)."""
    from functools import partial

    from bot import cli
    from bot.cli import runtime
    from storage.cache import Keys

    runtime.build_core = partial(runtime.build_core, keys=Keys(prefix=prefix))  # type: ignore[assignment]
    # With --workers N the serving processes are started afresh (python -m bot.cli serve
    # --reuse-port): the patch does not reach them, the inherited setting does. Without it
    # they wrote under the default prefix, where an earlier run's stored answers for the same
    # update ids made a new press look like a redelivery (and go unanswered).
    os.environ["MEMBERBOT_REDIS_PREFIX"] = prefix
    if patch is not None:
        patch()
    return cli.main(
        ["serve", "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port)]
    )


def serve_app(app: Any, port: int) -> int:
    """In a child: serve an aiohttp app on 127.0.0.1:port as `memberbot serve` does, until
    SIGTERM."""
    from bot.http.serving import serve_until_stopped

    asyncio.run(serve_until_stopped(app, "127.0.0.1", port))
    return 0
