"""`memberbot serve`: one HTTP server for the webhooks, the APIs, health and metrics."""

from __future__ import annotations

import argparse
import logging
from typing import Any

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
    serve.set_defaults(run=run)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    # Imported here: the web server and the chat libraries take a while to import, and the
    # other commands do not need them.
    from bot.http.server import create_app
    from bot.http.serving import serve_until_stopped

    host, port = args.host or settings.http_host, args.port or settings.http_port
    async with open_core(settings) as core:

        def started() -> None:
            log.info("serving host=%s port=%d database=%s", host, port, core.services.db.dialect)

        try:
            await serve_until_stopped(create_app(core), host, port, on_started=started)
        except OSError as exc:
            where = "--host/--port" if args.host or args.port else "MEMBERBOT_HTTP_HOST/_PORT"
            raise Failed(f"cannot listen on {host}:{port} ({where}): {cause(exc)}") from None
    return 0
