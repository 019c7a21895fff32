"""Prometheus metrics of one app instance (own registry, so tests can build many apps)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "memberbot_requests", "Messages handled", ["channel"], registry=self.registry
        )
        self.http_requests = Counter(
            "memberbot_http_requests", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "memberbot_handler_seconds",
            "Handler latency",
            ["action"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.checkins = Counter("memberbot_checkins", "Check-ins credited", registry=self.registry)
        self.points_issued = Counter(
            "memberbot_points_issued", "Points credited", ["reason"], registry=self.registry
        )
        self.flash_claims = Counter(
            "memberbot_flash_claims",
            "Flash-sale claims by result",
            ["result"],
            registry=self.registry,
        )
        self.errors = Counter(
            "memberbot_handler_errors", "Unexpected handler errors", registry=self.registry
        )
        self.tickets = Counter("memberbot_tickets", "Complaints filed", registry=self.registry)
        self.first_response = Histogram(
            "memberbot_ticket_first_response_hours",
            "Hours from filing to a complaint's first response",
            registry=self.registry,
            buckets=(0.25, 1, 2, 4, 8, 12, 24, 48, 72),
        )
        self.ticket_breaches = Counter(
            "memberbot_ticket_breaches", "Complaints past their deadline", registry=self.registry
        )
        self.ticket_scores = Counter(
            "memberbot_ticket_scores", "Complaint scores", ["score"], registry=self.registry
        )
        # Not `memberbot_tickets`: the counter of complaints filed already owns that name.
        self.tickets_by_state = Gauge(
            "memberbot_tickets_by_state",
            "Complaint tickets by state, read from the database when /metrics is rendered",
            ["state"],
            registry=self.registry,
        )

        self._requests: dict[str, Counter] = {}
        self._latencies: dict[str, Histogram] = {}

    def requests_of(self, channel: str) -> Counter:
        """`requests.labels(channel)`, looked up once per channel (per message it showed)."""
        found = self._requests.get(channel)
        if found is None:
            found = self._requests[channel] = self.requests.labels(channel)
        return found

    def latency_of(self, action: str) -> Histogram:
        """`latency.labels(action)`, likewise."""
        found = self._latencies.get(action)
        if found is None:
            found = self._latencies[action] = self.latency.labels(action)
        return found

    def set_tickets(self, counts: Mapping[str, int]) -> None:
        """The tickets gauge from a count per state (the whole table, whoever changed it)."""
        self.tickets_by_state.clear()
        for state, n in counts.items():
            self.tickets_by_state.labels(state).set(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)
