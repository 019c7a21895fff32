"""kill -9 of `memberbot serve` during a crowd of WeChat check-ins or Telegram updates
(subprocesses, both backends): after a restart, WeChat's retries and Telegram's redeliveries are
processed, every update acknowledged with a 200 was handled, and no point is lost or doubled."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiohttp import ClientError, ClientSession, ClientTimeout

from storage import ledger, members
from storage.db import Database
from tests.fakes.telegram import TOKEN as TELEGRAM_TOKEN
from tests.fakes.telegram import running_fake
from tests.test_cli import COMMAND

TOKEN = "crash-test-token"
CROWD = 60
CHECKED_IN = "Checked in! +5 points"
ALREADY = "You have already checked in today"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(
    tmp_path: Path, backend: tuple[str, str | None], port: int, **extra: str
) -> subprocess.Popen[bytes]:
    env = {
        **extra,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "MEMBERBOT_DATABASE_URL": backend[0],
        "MEMBERBOT_HTTP_PORT": str(port),
        "MEMBERBOT_DEFAULT_LOCALE": "en",
        "MEMBERBOT_TIMEZONE": "Asia/Shanghai",
        "MEMBERBOT_WECHAT_TOKEN": TOKEN,
        "MEMBERBOT_ADMIN_TOKEN": "crash-admin",
    }
    if backend[1] is not None:
        env["MEMBERBOT_REDIS_URL"] = backend[1]
    log = (tmp_path / f"serve-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(
        [*COMMAND, "serve", "--workers", "1"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def _until_healthy(http: ClientSession, process: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        assert process.poll() is None, "memberbot serve exited"
        try:
            async with http.get("/healthz") as resp:
                if resp.status == 200:
                    return
        except (OSError, ClientError):
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("memberbot serve did not become healthy")


def _message(openid: str, msg_id: int) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[gh_0]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[签到]]></Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()


async def _post(http: ClientSession, body: bytes) -> str:
    """One delivery as WeChat makes it: freshly signed, given up after 5 seconds."""
    timestamp, nonce = str(int(time.time())), secrets.token_hex(6)
    signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
    query = {"signature": signature, "timestamp": timestamp, "nonce": nonce}
    try:
        async with http.post(
            "/wechat", params=query, data=body, timeout=ClientTimeout(total=5)
        ) as resp:
            return f"{resp.status} {await resp.text()}"
    except (OSError, TimeoutError, ClientError) as exc:
        return f"no answer {type(exc).__name__}"


async def _retry_like_wechat(http: ClientSession, body: bytes) -> str:
    """WeChat's three tries: a new try when one gets no answer."""
    answer = ""
    for _ in range(3):
        answer = await _post(http, body)
        if not answer.startswith("no answer"):
            return answer
    return answer


async def _balances(url: str, channel: str, openids: list[str]) -> list[int]:
    db = Database(url, pool_size=2)
    try:
        found = []
        async with db.sessions() as session:
            for openid in openids:
                member = await members.find_by_identity(session, channel, openid)
                found.append(0 if member is None else await ledger.ledger_sum(session, member.id))
        return found
    finally:
        await db.close()


@pytest.fixture
async def own_redis_keys(backend: tuple[str, str | None]) -> None:
    """The subprocesses use the default key prefix: start from an empty one."""
    if backend[1] is None:
        return
    client = aioredis.Redis.from_url(backend[1])
    try:
        keys = [key async for key in client.scan_iter("mb:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_kill_9_during_a_crowd_of_checkins_loses_and_doubles_nothing(
    tmp_path: Path, backend: tuple[str, str | None], own_redis_keys: None
) -> None:
    port = _free_port()
    openids = [f"oCrash{secrets.token_hex(6)}" for _ in range(CROWD)]
    bodies = [_message(o, secrets.randbelow(2**62)) for o in openids]
    first = _start(tmp_path, backend, port)
    processes: list[subprocess.Popen[bytes]] = [first]
    try:
        async with ClientSession(f"http://127.0.0.1:{port}") as http:
            await _until_healthy(http, first)
            # Two waves: the kill comes once the first is being answered and the second is on
            # its way, so some messages are answered and some are not, however fast the box.
            half = len(bodies) // 2
            crowd = [asyncio.create_task(_post(http, body)) for body in bodies[:half]]
            done, _ = await asyncio.wait(crowd, return_when=asyncio.FIRST_COMPLETED)
            crowd += [asyncio.create_task(_post(http, body)) for body in bodies[half:]]
            await asyncio.sleep(0)
            first.send_signal(signal.SIGKILL)  # mid-crowd: some answered, some in flight
            first.wait(10)
            before = await asyncio.gather(*crowd)

            second = _start(tmp_path, backend, port)
            processes.append(second)
            await _until_healthy(http, second)
            retries = await asyncio.gather(*(_retry_like_wechat(http, b) for b in bodies))
        balances = await _balances(backend[0], "wechat", openids)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(10)

    answered = [b for b in before if CHECKED_IN in b]
    assert done and answered, before  # the crash came after some answers...
    assert any(b.startswith("no answer") for b in before), before  # ...and before others
    assert balances == [5] * CROWD, list(zip(before, retries, balances, strict=True))
    assert all(r.startswith("200 ") for r in retries), retries
    assert all(CHECKED_IN in r or ALREADY in r for r in retries), retries


TELEGRAM_SECRET = "crash-telegram-secret"


def _update(update_id: int, user_id: int) -> bytes:
    message = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": "C"},
        "from": {"id": user_id, "is_bot": False, "first_name": "C", "language_code": "en"},
        "text": "/checkin",
        "entities": [{"type": "bot_command", "offset": 0, "length": 8}],
    }
    return json.dumps({"update_id": update_id, "message": message}).encode()


async def _deliver(http: ClientSession, body: bytes) -> int | None:
    """Telegram's webhook call: the status, or None when the server went away."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    try:
        async with http.post(
            "/telegram", data=body, headers=headers, timeout=ClientTimeout(total=30)
        ) as resp:
            return resp.status
    except (OSError, TimeoutError, ClientError):
        return None


async def test_kill_9_during_a_crowd_of_telegram_updates_loses_no_acknowledged_update(
    tmp_path: Path, backend: tuple[str, str | None], own_redis_keys: None
) -> None:
    port = _free_port()
    users = [7_700_000_000 + secrets.randbelow(10**8) for _ in range(CROWD)]
    bodies = [_update(secrets.randbelow(2**40), u) for u in users]
    async with running_fake() as fake:
        telegram = {
            "MEMBERBOT_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
            "MEMBERBOT_TELEGRAM_API_BASE": fake.url,
            "MEMBERBOT_TELEGRAM_WEBHOOK_URL": "https://bot.example.test/telegram",
            "MEMBERBOT_TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
        }
        first = _start(tmp_path, backend, port, **telegram)
        processes = [first]
        try:
            async with ClientSession(f"http://127.0.0.1:{port}") as http:
                await _until_healthy(http, first)
                half = len(bodies) // 2  # two waves, as above
                crowd = [asyncio.create_task(_deliver(http, body)) for body in bodies[:half]]
                await asyncio.wait(crowd, return_when=asyncio.FIRST_COMPLETED)
                crowd += [asyncio.create_task(_deliver(http, body)) for body in bodies[half:]]
                await asyncio.sleep(0)
                first.send_signal(signal.SIGKILL)
                first.wait(10)
                before = await asyncio.gather(*crowd)

                second = _start(tmp_path, backend, port, **telegram)
                processes.append(second)
                await _until_healthy(http, second)
                # Telegram redelivers what got no 200.
                unacknowledged = [
                    b for b, status in zip(bodies, before, strict=True) if status != 200
                ]
                redelivered = await asyncio.gather(*(_deliver(http, b) for b in unacknowledged))
            balances = await _balances(backend[0], "telegram", [str(u) for u in users])
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    process.wait(10)

    assert 200 in before and None in before, before  # the crash came mid-crowd
    assert redelivered == [200] * len(unacknowledged)
    assert balances == [5] * CROWD, list(zip(before, balances, strict=True))
