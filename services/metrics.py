"""Prometheus counters, one registry per running platform (so tests do not share one),
with the standard ``process_*``, ``python_gc_*`` and ``python_info`` metrics on it too."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.gc_collector import GCCollector


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.updates = self._counter(
            "citybots_updates_total", "Updates received, by bot and outcome", "bot", "outcome"
        )
        self.update_seconds = self._histogram(
            "citybots_update_seconds",
            "Time to handle one update",
            "bot",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.send_wait_seconds = self._histogram(
            "citybots_send_wait_seconds",
            "How long a message waited for its turn in the shared pacer",
            "bot",
            "priority",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.api_retries = self._counter(
            "citybots_bot_api_retries_total",
            "Bot API calls retried after 429 Too Many Requests",
            "bot",
        )
        self.live_fixes = self._counter(
            "citybots_live_fixes_total",
            "Live-location fixes taken by the quarantine bot, by outcome",
            "outcome",
        )
        self.quarantine_alerts = self._counter(
            "citybots_quarantine_alerts_total", "Quarantine episodes opened, by kind", "kind"
        )
        self.check_ins = self._counter(
            "citybots_check_ins_total",
            "Venue check-in attempts (QR scans and staff check-ins by IIN), by outcome",
            "outcome",
        )
        self.job_runs = self._counter(
            "citybots_job_runs_total",
            "Scheduled job runs in this process (a run may find another worker's lock)",
            "job",
            "outcome",
        )
        self.outbox_backlog = self._gauge(
            "citybots_outbox_backlog",
            "Messages in the outbox due and not sent yet, by bot (counted at each scrape)",
            "bot",
        )

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _gauge(self, name: str, documentation: str, *labels: str) -> Gauge:
        return Gauge(name, documentation, labels, registry=self.registry)

    def _histogram(
        self, name: str, documentation: str, *labels: str, buckets: tuple[float, ...]
    ) -> Histogram:
        return Histogram(name, documentation, labels, registry=self.registry, buckets=buckets)
