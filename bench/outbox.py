"""Outbox delivery speed: N pushes through the real outbox sender and the real app senders to
local fakes, with baselines in the same run.

* Telegram: N pushes (one private chat each, as a broadcast) queued in the outbox, sent by
  bot.jobs.outbox.OutboxSender through bot.channels.telegram_api.TelegramSender (the
  python-telegram-bot client under memberbot's shared rate limiter) with the default rules, to
  a fake Bot API that ENFORCES Telegram's limits: a sendMessage beyond 30 in one wall-clock
  second, or a second one to a chat within a second, is answered 429 with retry_after 1.
  Measured: the rate (N / seconds from the start of sending to the fake's last acceptance)
  and the sustained rate (accepted per full calendar second, the first and last left out), as
  shares of 30/s, the 429s the fake answered, and the most sends the fake
  accepted in any sliding second (its window is the calendar second, as the limiter's is; a
  stricter API would count these). Aim: share >= 0.95 with no 429.
* WeChat: N pushes, one follower each, whose 48-hour window is opened in the cache as an
  inbound message opens it (WeChatAPI.open_window), sent by the same OutboxSender through
  bot.channels.wechat_sender.WeChatSender to the local fake customer-service API
  (tests/fakes/wechat.py); next to a bare aiohttp client loop posting the same JSON to the same
  fake with as many requests in flight as the outbox sends to WeChat followers at once
  (outbox.wechat_concurrency), run right before and right after the outbox (the baseline is
  their mean, so that a machine whose load changes meanwhile favours neither side).
  Measured: pushes/s of each and their ratio. Aim: >= 0.5.

Everything runs in this one process (fakes included, on 127.0.0.1). The database is a fresh
SQLite file (in-process cache), a scratch PostgreSQL database with Redis under a unique key
prefix (removed afterwards), or (--backend both, the default) one after the other. Afterwards
every push must be marked sent and every chat must have got exactly one message; anything
else fails the run.

Usage: .venv/bin/python bench/outbox.py [--pushes 1000] [--backend both|sqlite|postgres]
       [--apps both|telegram|wechat]
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ (the script's folder, first on sys.path) holds telegram.py: it must not shadow
# python-telegram-bot. Appended first so that the removal never fails.
sys.path.append(str(Path(__file__).resolve().parent))
sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import os
import platform
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from sqlalchemy import func, select

from bench._common import (
    BenchError,
    box_note,
    forget_keys,
    free_port,
    migrate,
    scratch_postgres,
    scratch_sqlite,
)
from bot.app import Core, build_core
from bot.core.messages import Reply
from bot.settings import Settings
from storage import outbox
from storage.models import OutboxPush
from tests.fakes.wechat import APPID, SECRET, FakeWeChat

TOKEN = "4242:BENCH"
PER_SECOND = 30
CHAT_BASE = 100_000_000


class LimitedBotAPI:
    """getMe and sendMessage, with Telegram's limits enforced (30/s overall, 1/s per chat)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted: list[tuple[int, float]] = []  # (chat, time.time() at acceptance)
        self.refused = 0
        self._second: Counter[int] = Counter()
        self._chat_second: dict[int, int] = {}
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

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        if method == "getme":
            me = {"id": 4242, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
            return web.json_response({"ok": True, "result": me})
        if method != "sendmessage":
            return web.json_response({"ok": True, "result": True})
        form = await request.post()
        chat = int(str(form["chat_id"]))
        now = time.time()
        second = int(now)
        if self._second[second] >= PER_SECOND or self._chat_second.get(chat) == second:
            self.refused += 1
            body = {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            }
            return web.json_response(body, status=429)
        self._second[second] += 1
        self._chat_second[chat] = second
        self.accepted.append((chat, now))
        message = {
            "message_id": len(self.accepted),
            "date": second,
            "chat": {"id": chat, "type": "private"},
            "text": str(form.get("text", "")),
        }
        return web.json_response({"ok": True, "result": message})

    def sustained(self) -> float:
        """Sends accepted per second over the full seconds (the first and last, partly used,
        left out), as a share of 30/s."""
        per_second = Counter(int(at) for _, at in self.accepted)
        first, last = min(per_second), max(per_second)
        middle = sum(per_second[s] for s in range(first + 1, last))
        return middle / max(1, last - first - 1) / PER_SECOND

    def busiest_sliding_second(self) -> int:
        times = sorted(at for _, at in self.accepted)
        most, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= 1.0:
                first += 1
            most = max(most, last - first + 1)
        return most


async def queue_pushes(core: Core, channel: str, chats: Sequence[str]) -> None:
    now = datetime.now(UTC)
    for start in range(0, len(chats), 500):
        async with core.services.db.transaction() as session:
            for chat in chats[start : start + 500]:
                target = outbox.Target(channel, chat)
                payload = Reply(f"Your tier is now Gold ({chat}).").to_json()
                await outbox.enqueue(
                    session, f"bench:{channel}:{chat}", target, "tier-change", payload, now
                )


async def sent_count(core: Core, channel: str) -> int:
    async with core.services.db.reader() as session:
        stmt = select(func.count()).where(
            OutboxPush.channel == channel, OutboxPush.state == outbox.SENT
        )
        return int((await session.execute(stmt)).scalar_one())


async def send_all(core: Core, channel: str, n: int, deadline: float) -> float:
    """Run the outbox sender until the n pushes of `channel` are marked sent; seconds taken."""
    sender = core.jobs.sender
    started = time.perf_counter()
    async with asyncio.timeout(deadline):
        while True:
            if not await sender.drain():
                if await sent_count(core, channel) >= n:
                    break
                await asyncio.sleep(0.1)  # pushes waiting out a retry_after
    return time.perf_counter() - started


async def bench_telegram(
    core: Core, api: LimitedBotAPI, n: int, deadline: float
) -> dict[str, float]:
    await queue_pushes(core, "telegram", [str(CHAT_BASE + i) for i in range(n)])
    # getMe, once, as a running process has done long before: not part of the timing.
    await core.services.senders.pusher("telegram").start()  # type: ignore[attr-defined]
    started = time.time()
    await send_all(core, "telegram", n, deadline)
    chats = Counter(chat for chat, _ in api.accepted)
    if len(chats) != n or max(chats.values()) != 1:
        raise BenchError(f"telegram: {len(api.accepted)} sends to {len(chats)} chats for {n}")
    seconds = max(at for _, at in api.accepted) - started
    return {
        "seconds": seconds,
        "rate": n / seconds,
        "share": n / seconds / PER_SECOND,
        "sustained": api.sustained(),
        "429s": api.refused,
        "busiest": api.busiest_sliding_second(),
    }


async def bare_loop(url: str, token: str, openids: Sequence[str], concurrency: int) -> float:
    """The baseline: aiohttp posting the same JSON the sender posts; seconds taken."""
    todo = iter(openids)
    async with aiohttp.ClientSession() as http:

        async def worker() -> None:
            for openid in todo:
                body = {"touser": openid, "msgtype": "text", "text": {"content": f"hi {openid}"}}
                async with http.post(
                    f"{url}/cgi-bin/message/custom/send", params={"access_token": token}, json=body
                ) as response:
                    if (await response.json(content_type=None)).get("errcode"):
                        raise BenchError("wechat baseline: a send was refused")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def bench_wechat(core: Core, fake: FakeWeChat, n: int, deadline: float) -> dict[str, float]:
    openids = [f"o{CHAT_BASE + i}" for i in range(n)]
    sender = core.services.senders.pusher("wechat")
    api = sender.api  # type: ignore[attr-defined]
    for openid in openids:  # as each follower's message would: a 48-hour window, 5 sends
        await api.open_window(openid, message=True)
    await queue_pushes(core, "wechat", openids)
    await api.access_token()  # fetched once, as in a running process; not part of the timing
    _, concurrency = core.services.rules.outbox.slots("wechat")
    assert fake.token is not None
    cpu = time.process_time()
    bare = [
        await bare_loop(fake.url, fake.token, [f"b{CHAT_BASE + i}" for i in range(n)], concurrency)
    ]
    bare_cpu = time.process_time() - cpu
    cpu = time.process_time()
    seconds = await send_all(core, "wechat", n, deadline)
    outbox_cpu = time.process_time() - cpu
    cpu = time.process_time()
    bare.append(
        await bare_loop(fake.url, fake.token, [f"c{CHAT_BASE + i}" for i in range(n)], concurrency)
    )
    bare_cpu += time.process_time() - cpu
    got = Counter(str(m["touser"]) for m in fake.sent if str(m["touser"]).startswith("o"))
    if len(got) != n or max(got.values()) != 1:
        raise BenchError(f"wechat: {sum(got.values())} sends to {len(got)} followers for {n}")
    return {
        "rate": n / seconds,
        "bare": n / (sum(bare) / len(bare)),
        "concurrency": concurrency,
        # CPU time of this whole process (the fake's side included) per push: what the load
        # of other processes on the machine moves least.
        "cpu_ms": outbox_cpu / n * 1000,
        "bare_cpu_ms": bare_cpu / len(bare) / n * 1000,
    }


async def run(
    backend: str, args: argparse.Namespace
) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    api, fake = LimitedBotAPI(), FakeWeChat()
    await api.start()
    await fake.start()
    prefix = f"mbbench:{uuid.uuid4().hex[:12]}"
    try:
        if backend == "postgres":
            async with scratch_postgres(args.pg_dsn) as dsn:
                url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
                try:
                    return await measure(url, args.redis_url, prefix, api, fake, args)
                finally:
                    await forget_keys(args.redis_url, prefix)
        async with scratch_sqlite() as path:
            return await measure(f"sqlite+aiosqlite:///{path}", None, prefix, api, fake, args)
    finally:
        await api.close()
        await fake.close()


async def measure(
    url: str,
    redis_url: str | None,
    prefix: str,
    api: LimitedBotAPI,
    fake: FakeWeChat,
    args: argparse.Namespace,
) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    await migrate(url)
    settings = Settings(
        database_url=url,
        redis_url=redis_url,
        redis_prefix=prefix,
        telegram_token=TOKEN,
        telegram_api_base=api.url,
        wechat_token="bench",
        wechat_appid=APPID,
        wechat_secret=SECRET,
        wechat_api_base=fake.url,
    )
    core = await build_core(settings)
    try:
        telegram = wechat = None
        if args.apps in ("both", "telegram"):
            telegram = await bench_telegram(core, api, args.pushes, args.timeout)
        if args.apps in ("both", "wechat"):
            wechat = await bench_wechat(core, fake, args.pushes, args.timeout)
    finally:
        await core.close()
    return telegram, wechat


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=1000, help="pushes per channel (N)")
    parser.add_argument("--backend", choices=("both", "sqlite", "postgres"), default="both")
    parser.add_argument(
        "--apps",
        choices=("both", "telegram", "wechat"),
        default="both",
        help="which phases to run (Telegram's takes N / 30 seconds)",
    )
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
    parser.add_argument("--timeout", type=float, default=900.0, help="deadline per phase, s")
    args = parser.parse_args(argv)
    if args.pushes < 1:
        print("--pushes must be positive")
        return 2
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    print(
        f"memberbot outbox bench {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {' and '.join(backends)}, "
        f"{args.pushes} pushes per channel; fakes in this process"
    )
    print(box_note())
    for backend in backends:
        try:
            telegram, wechat = asyncio.run(run(backend, args))
        except (BenchError, TimeoutError) as exc:
            print(f"{backend}: FAILED: {exc or 'a phase ran past --timeout'}")
            return 1
        if telegram is not None:
            print(
                f"{backend} telegram: {args.pushes} pushes in {telegram['seconds']:.1f} s = "
                f"{telegram['rate']:.2f}/s ({telegram['share']:.3f} of {PER_SECOND}/s); sustained "
                f"(full seconds): {telegram['sustained']:.3f} of {PER_SECOND}/s; "
                f"429s: {telegram['429s']:.0f}; most accepted in any sliding second: "
                f"{telegram['busiest']:.0f}"
            )
        if wechat is not None:
            print(
                f"{backend} wechat: outbox {wechat['rate']:.0f} pushes/s, bare aiohttp loop "
                f"{wechat['bare']:.0f}/s ({wechat['concurrency']:.0f} in flight): "
                f"ratio {wechat['rate'] / wechat['bare']:.2f}; CPU per push: outbox "
                f"{wechat['cpu_ms']:.3f} ms, bare loop {wechat['bare_cpu_ms']:.3f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
