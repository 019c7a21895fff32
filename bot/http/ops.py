"""GET /healthz (database and cache reachable) and GET /metrics (Prometheus text)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.http.common import core_of, json_answer

CHECK_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    services = core_of(request).services
    checks = {"database": services.db.ping(), "cache": services.cache.ping()}
    report: dict[str, str] = {}
    for name, probe in checks.items():
        try:
            await asyncio.wait_for(probe, CHECK_TIMEOUT)
            report[name] = "ok"
        except Exception:
            report[name] = "down"
    healthy = all(v == "ok" for v in report.values())
    return json_answer(
        {"status": "ok" if healthy else "down", **report}, status=200 if healthy else 503
    )


async def metrics(request: web.Request) -> web.Response:
    body = core_of(request).services.metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
