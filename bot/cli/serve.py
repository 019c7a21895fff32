"""`memberbot serve`: one HTTP server for the webhooks, the APIs, health and metrics."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from bot.cli import gc_tuning
from bot.cli.runtime import Failed, cause, open_core
from bot.settings import Settings

log = logging.getLogger("memberbot")


def add(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the HTTP server (MEMBERBOT_DATABASE_URL)",
        description="Run the HTTP server until SIGINT or SIGTERM: the WeChat and Telegram "
        "webhooks (when their tokens are set; Telegram polls without a webhook URL), the "
        "operator API, the shop's orders, /healthz and /metrics. Uses MEMBERBOT_DATABASE_URL "
        "(an SQLite file is migrated on start; PostgreSQL needs `memberbot db upgrade`).",
    )
    serve.add_argument("--host", help="address to listen on (default MEMBERBOT_HTTP_HOST)")
    serve.add_argument(
        "--port", type=int, help="port to listen on (default MEMBERBOT_HTTP_PORT, 8080)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes serving the one port (default: the number of cores with PostgreSQL and "
        "Redis, 1 on SQLite; more than 1 needs PostgreSQL and MEMBERBOT_REDIS_URL)",
    )
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(run=run)


def workers_wanted(settings: Settings, asked: int | None) -> int:
    """How many serving processes: shared state lives in the database and Redis, so several
    need both; one process on SQLite (or without Redis) keeps its caches in memory."""
    shared = settings.redis_url is not None and not settings.database_url.startswith("sqlite")
    if asked is None:
        return (os.cpu_count() or 1) if shared else 1
    if asked < 1:
        raise Failed("--workers must be at least 1")
    if asked > 1 and not shared:
        raise Failed(
            f"--workers {asked} needs PostgreSQL (MEMBERBOT_DATABASE_URL) and Redis "
            "(MEMBERBOT_REDIS_URL): without them each process would keep its own caches"
        )
    return asked


async def run(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here: the web server and the chat libraries take a while to import, and the
    # other commands do not need them.
    from bot.http.server import create_app
    from bot.http.serving import serve_until_stopped

    host, port = args.host or settings.http_host, args.port or settings.http_port
    workers = 1 if args.reuse_port else workers_wanted(settings, args.workers)
    if workers > 1:
        from bot.cli.supervise import supervise

        return await supervise(workers, host, port)
    async with open_core(settings) as core:
        gc_tuning.settle()

        def started() -> None:
            log.info("serving host=%s port=%d database=%s", host, port, core.services.db.dialect)

        try:
            await serve_until_stopped(
                create_app(core), host, port, on_started=started, reuse_port=args.reuse_port
            )
        except OSError as exc:
            where = "--host/--port" if args.host or args.port else "MEMBERBOT_HTTP_HOST/_PORT"
            raise Failed(f"cannot listen on {host}:{port} ({where}): {cause(exc)}") from None
    return 0
