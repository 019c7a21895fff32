"""Prometheus figures of the outbox, on the app's own registry (bot.core.metrics.Metrics).

Counters move as this process sends; the depth and the oldest due push are read from the
database by `refresh` (the sender does it as it goes, /metrics may do it before rendering),
so every process reports the same shared table.
"""

from __future__ import annotations

from datetime import datetime
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Gauge

from bot.core.metrics import Metrics
from storage import outbox_reads
from storage.db import Database


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "memberbot_outbox_sent",
            "Pushes delivered",
            ["channel", "kind"],
            registry=registry,
        )
        self.failures = Counter(
            "memberbot_outbox_failures",
            "Push attempts that did not deliver, by reason and what happens next",
            ["channel", "reason", "outcome"],  # outcome: retry, hold, failed
            registry=registry,
        )
        self.depth = Gauge(
            "memberbot_outbox_depth",
            "Pushes in the outbox by state and channel",
            ["state", "channel"],
            registry=registry,
        )
        self.oldest_due = Gauge(
            "memberbot_outbox_oldest_due_seconds",
            "How long the longest-waiting due push has waited (0: none overdue)",
            registry=registry,
        )

    async def refresh(self, db: Database, now: datetime) -> float:
        """Read depth and lag from the database into the gauges; returns the lag in seconds."""
        async with db.reader() as session:
            counts = await outbox_reads.depth(session)
        self.depth.clear()
        for (state, channel), n in counts.items():
            self.depth.labels(state, channel).set(n)
        return await self.lag(db, now)

    async def lag(self, db: Database, now: datetime) -> float:
        """How long the longest-waiting due push has waited (one indexed query)."""
        async with db.reader() as session:
            oldest = await outbox_reads.oldest_due(session, now)
        lag = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        self.oldest_due.set(lag)
        return lag


_BY_REGISTRY: WeakKeyDictionary[CollectorRegistry, OutboxMetrics] = WeakKeyDictionary()


def outbox_metrics(metrics: Metrics) -> OutboxMetrics:
    """The outbox's metrics on this app's registry (made once per registry)."""
    found = _BY_REGISTRY.get(metrics.registry)
    if found is None:
        found = _BY_REGISTRY[metrics.registry] = OutboxMetrics(metrics.registry)
    return found
