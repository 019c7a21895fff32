"""Real processes on PostgreSQL + Redis: `memberbot worker` and `memberbot serve` side by side,
and a worker killed with SIGKILL in the middle of the outbox.

The Telegram Bot API is the local fake (real HTTP); everything else is the real thing. Sizes
are bounded for `make test` (Telegram's 30 sends/s make 1,000 pushes take 33 s);
MEMBERBOT_LONG_TESTS=1 runs the issue's 1,000 pushes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.core.messages import Reply
from storage import ledger, members, outbox
from storage.db import Database
from storage.models import JobRun, OutboxPush
from tests.conftest import PG_URL, REDIS_URL, _redis_or_fail, _truncate, _unavailable
from tests.fakes.telegram import TOKEN, FakeTelegram

LONG = bool(os.environ.get("MEMBERBOT_LONG_TESTS"))
PUSHES = 1000 if LONG else 240
BATCH = 20
CONCURRENCY = 8  # chats a sender sends to at once: at most this many sent and not yet marked
MEMBERBOT = str(Path(sys.executable).with_name("memberbot"))
# Short lease and poll so the test waits seconds, not minutes; no quiet hours, so what the
# jobs queue is not held for the morning whatever the time of the run.
RULES = f"""
[outbox]
lease_seconds = 5
poll_seconds = 0.5
batch = {BATCH}
concurrency = {CONCURRENCY}

[nudges]
quiet_start = "00:00"
quiet_end = "00:00"
"""
TICKED = ("expiry", "reminders", "birthdays", "dormant", "tier-review")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Fleet:
    """Processes of one deployment (one database, one Redis prefix), stopped at the end.

    Their logs go to files: a pipe nobody reads would block a chatty process."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: list[tuple[asyncio.subprocess.Process, Path]] = []

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        log = self.logs / f"{len(self.procs)}-{args[0]}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                MEMBERBOT, *args, env=self.env, stdout=out, stderr=asyncio.subprocess.STDOUT
            )
        self.procs.append((proc, log))
        return proc

    def check(self) -> None:
        """Fail at once when a process this test did not kill has exited."""
        for proc, log in self.procs:
            if proc.returncode not in (None, -signal.SIGKILL):
                raise AssertionError(f"{log.name} exited {proc.returncode}:\n{self.tails()}")

    def tails(self) -> str:
        return "\n".join(
            f"--- {log.name} (exit {proc.returncode})\n"
            + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            for proc, log in self.procs
        )

    async def stop(self) -> None:
        for proc, _ in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


Deployment = tuple[Fleet, Database, FakeTelegram]


@pytest.fixture
async def deployment(postgres_ready: str | Exception, tmp_path: Path) -> AsyncIterator[Deployment]:
    if isinstance(postgres_ready, Exception):
        _unavailable("PostgreSQL", postgres_ready)
    await _redis_or_fail()
    await _truncate(PG_URL)
    fake = FakeTelegram()
    await fake.start()
    rules = tmp_path / "memberbot.toml"
    rules.write_text(RULES, encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MEMBERBOT_")},
        "MEMBERBOT_DATABASE_URL": PG_URL,
        "MEMBERBOT_REDIS_URL": REDIS_URL,
        "MEMBERBOT_REDIS_PREFIX": f"mbt:{uuid.uuid4().hex[:16]}",
        "MEMBERBOT_TELEGRAM_TOKEN": TOKEN,
        "MEMBERBOT_TELEGRAM_API_BASE": fake.url,
        "MEMBERBOT_TELEGRAM_WEBHOOK_URL": "https://bot.example/telegram",
        "MEMBERBOT_TELEGRAM_WEBHOOK_SECRET": "tg-secret-0123456789",
        "MEMBERBOT_RULES_FILE": str(rules),
        "MEMBERBOT_ADMIN_TOKEN": "test-admin-token",
        "MEMBERBOT_SHOP_SECRET": "test-shop-secret",
    }
    fleet = Fleet(env, tmp_path)
    db = Database(PG_URL, pool_size=2)
    try:
        yield fleet, db, fake
    finally:
        await fleet.stop()
        print(fleet.tails())  # pytest shows captured output only when the test failed
        await db.close()
        await fake.close()


async def eventually(
    fleet: Fleet, check: Callable[[], Awaitable[bool]], timeout: float, what: str
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        fleet.check()
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.2)


async def count_pushes(db: Database, *where: object) -> int:
    async with db.reader() as session:
        stmt = select(func.count()).select_from(OutboxPush).where(*where)  # type: ignore[arg-type]
        return int((await session.execute(stmt)).scalar_one())


async def test_a_worker_killed_mid_outbox_loses_nothing_and_repeats_little(
    deployment: Deployment,
) -> None:
    fleet, db, fake = deployment
    now = datetime.now(UTC)
    async with db.transaction() as session:
        for i in range(PUSHES):  # one chat each: only the overall 30/s budget paces them
            target = outbox.Target("telegram", str(10_000 + i))
            payload = Reply(f"push {i}").to_json()
            await outbox.enqueue(session, f"crash:{i}", target, "tier-change", payload, now)

    first = await fleet.start("worker")

    async def a_third_sent() -> bool:
        return len(fake.sent) >= PUSHES // 3

    await eventually(fleet, a_third_sent, 60, "a third of the pushes sent")
    first.send_signal(signal.SIGKILL)  # no shutdown: what it claimed stays leased
    await first.wait()
    killed_after = len(fake.sent)
    await fleet.start("worker")

    async def all_sent() -> bool:
        return await count_pushes(db, OutboxPush.state == outbox.SENT) == PUSHES

    await eventually(fleet, all_sent, 30 + PUSHES / 20, "every push sent after the restart")
    delivered = [s.chat_id for s in fake.sent]
    repeated = len(delivered) - len(set(delivered))
    print(f"\n{PUSHES} pushes, worker killed after {killed_after} sends: {repeated} sent twice")
    assert set(delivered) == {10_000 + i for i in range(PUSHES)}  # none lost
    # Only what was sent and not yet marked when it died: each chat being sent to waits for
    # its push's mark before its next send, so at most one push per chat in parallel.
    assert repeated <= CONCURRENCY
    fleet.check()


async def test_two_workers_and_two_servers_run_each_job_once(deployment: Deployment) -> None:
    fleet, db, fake = deployment
    now = datetime.now(UTC)
    started_hour = now.strftime("%Y%m%d%H")
    member, _ = await members.get_or_create(db, "telegram", "4242", now)
    async with db.transaction() as session:
        # Points that expire in 20 days: the reminders job tells the member, once.
        earned = now - timedelta(days=345)
        await ledger.earn(session, member.id, 50, "checkin", "seed:1", earned, expiry_days=365)
    for _ in range(2):
        await fleet.start("serve", "--workers", "1", "--port", str(free_port()))
        await fleet.start("worker")

    async def ran_and_reminded() -> bool:
        async with db.reader() as session:
            finished = await session.execute(
                select(JobRun.job).where(JobRun.finished_at.is_not(None)).distinct()
            )
            jobs = set(finished.scalars())
        sent = await count_pushes(db, OutboxPush.kind == "reminder", OutboxPush.state == "sent")
        return sent == 1 and jobs >= set(TICKED)

    await eventually(fleet, ran_and_reminded, 45, "every job run and the reminder sent")
    await asyncio.sleep(3)  # the other worker's start-up tick has come and gone
    async with db.reader() as session:
        runs = (await session.execute(select(JobRun.job, JobRun.done, JobRun.error))).all()
        pushes = (await session.execute(select(OutboxPush.kind, OutboxPush.chat_id))).all()
    by_job: dict[str, list[int | None]] = defaultdict(list)
    for job, done, error in runs:
        assert error is None, (job, error)
        by_job[job].append(done)
    crossed_hour = datetime.now(UTC).strftime("%Y%m%d%H") != started_hour
    for job in TICKED:  # hourly and daily jobs: one run per period, whoever ticks
        assert len(by_job[job]) == 1 or crossed_hour, (job, by_job[job])
    assert sum(d or 0 for d in by_job["reminders"]) == 1
    assert [kind for kind, chat in pushes if chat == "4242"].count("reminder") == 1
    # The member got what their outbox rows say, each once.
    texts = [s.text for s in fake.sent_to(4242)]
    assert len(texts) == len([1 for _, chat in pushes if chat == "4242"])
    assert len(texts) == len(set(texts))
    fleet.check()
