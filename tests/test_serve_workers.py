"""`memberbot serve --workers N`: N processes on one port, a crashed one started again, all
stopped by one SIGTERM; refused (one line) where the processes could not share their state."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp

from tests.conftest import PG_URL, REDIS_URL, _redis_or_fail, _unavailable

MEMBERBOT = str(Path(sys.executable).with_name("memberbot"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> set[int]:
    listing = Path(f"/proc/{pid}/task/{pid}/children")
    found = listing.read_text().split() if listing.exists() else []
    return {int(p) for p in found}


async def until(check, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.2)


async def healthy(port: int) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def test_workers_share_a_port_come_back_after_a_crash_and_stop_together(
    postgres_ready, tmp_path
) -> None:
    if isinstance(postgres_ready, Exception):
        _unavailable("PostgreSQL", postgres_ready)
    await _redis_or_fail()
    port = free_port()
    env = {
        **os.environ,
        "MEMBERBOT_DATABASE_URL": PG_URL,
        "MEMBERBOT_REDIS_URL": REDIS_URL,
        "MEMBERBOT_REDIS_PREFIX": f"mbw:{uuid.uuid4().hex[:16]}",
    }
    log = (tmp_path / "serve.log").open("wb")
    parent = await asyncio.create_subprocess_exec(
        MEMBERBOT, "serve", "--workers", "2", "--port", str(port), env=env, stderr=log
    )
    try:

        async def two_serving() -> bool:
            assert parent.returncode is None, (tmp_path / "serve.log").read_text()
            return len(children(parent.pid)) == 2 and await healthy(port)

        await until(two_serving, 60, "two serving processes")
        first = children(parent.pid)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)

        async def replaced() -> bool:
            now = children(parent.pid)
            return len(now) == 2 and victim not in now and await healthy(port)

        await until(replaced, 60, "the killed process started again")
        parent.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(parent.wait(), 40)
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
        log.close()

    assert code == 0
    assert not await healthy(port)


async def test_serving_processes_do_not_outlive_a_killed_parent(postgres_ready, tmp_path) -> None:
    if isinstance(postgres_ready, Exception):
        _unavailable("PostgreSQL", postgres_ready)
    await _redis_or_fail()
    port = free_port()
    env = {
        **os.environ,
        "MEMBERBOT_DATABASE_URL": PG_URL,
        "MEMBERBOT_REDIS_URL": REDIS_URL,
        "MEMBERBOT_REDIS_PREFIX": f"mbw:{uuid.uuid4().hex[:16]}",
    }
    parent = await asyncio.create_subprocess_exec(
        MEMBERBOT, "serve", "--workers", "2", "--port", str(port), env=env
    )

    async def two_serving() -> bool:
        return len(children(parent.pid)) == 2 and await healthy(port)

    await until(two_serving, 60, "two serving processes")
    parent.kill()  # SIGKILL: the parent cannot pass anything on
    await parent.wait()

    async def gone() -> bool:
        return not await healthy(port)

    await until(gone, 30, "the serving processes stopped with their parent")


def test_several_workers_on_sqlite_are_refused_in_one_line(tmp_path) -> None:
    env = {**os.environ, "MEMBERBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/m.db"}
    env.pop("MEMBERBOT_REDIS_URL", None)
    done = subprocess.run(
        [MEMBERBOT, "serve", "--workers", "2"], env=env, capture_output=True, timeout=60
    )

    assert done.returncode == 1
    assert done.stderr.decode().strip() == (
        "memberbot: --workers 2 needs PostgreSQL (MEMBERBOT_DATABASE_URL) and Redis "
        "(MEMBERBOT_REDIS_URL): without them each process would keep its own caches"
    )
