"""GET /healthz (database and cache reachable) and GET /metrics (Prometheus text)."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from bot.core.context import Services
from bot.http.common import core_of, json_answer
from bot.jobs.metrics import outbox_metrics
from bot.jobs.outbox import degraded
from storage import tickets

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
    if not healthy:
        return json_answer({"status": "down", **report}, status=503)
    # Up but behind: pushes wait longer than the rules allow (no sender running, an app down).
    try:
        why = await asyncio.wait_for(degraded(services), CHECK_TIMEOUT)
    except Exception:
        why = "outbox not readable"
    if why is not None:
        return json_answer({"status": "degraded", "reason": why, **report})
    return json_answer({"status": "ok", **report})


async def metrics(request: web.Request) -> web.Response:
    services = core_of(request).services
    # The outbox's gauges describe the shared table: read it now, whoever sends.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            outbox_metrics(services.metrics).refresh(services.db, services.clock.now()),
            CHECK_TIMEOUT,
        )
    # So are the tickets' states (one GROUP BY); each figure is skipped alone if unreadable.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(_ticket_states(services), CHECK_TIMEOUT)
    body = services.metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


async def _ticket_states(services: Services) -> None:
    async with services.db.reader() as session:
        counts = await tickets.counts_by_state(session)
    # Every state appears, 0 included, so a state emptied since the last scrape reads 0.
    services.metrics.set_tickets({state: counts.get(state, 0) for state in tickets.STATES})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
