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
        self.updates = Counter(
            "citybots_updates_total",
            "Updates received, by bot and outcome",
            ["bot", "outcome"],
            registry=self.registry,
        )
        self.update_seconds = Histogram(
            "citybots_update_seconds",
            "Time to handle one update",
            ["bot"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.send_wait_seconds = Histogram(
            "citybots_send_wait_seconds",
            "How long a message waited for its turn in the shared pacer",
            ["bot", "priority"],
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.api_retries = Counter(
            "citybots_bot_api_retries_total",
            "Bot API calls retried after 429 Too Many Requests",
            ["bot"],
            registry=self.registry,
        )
        self.live_fixes = Counter(
            "citybots_live_fixes_total",
            "Live-location fixes taken by the quarantine bot, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.quarantine_alerts = Counter(
            "citybots_quarantine_alerts_total",
            "Quarantine episodes opened, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.check_ins = Counter(
            "citybots_check_ins_total",
            "Venue check-in attempts (QR scans and staff check-ins by IIN), by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.job_runs = Counter(
            "citybots_job_runs_total",
            "Scheduled job runs in this process (a run may find another worker's lock)",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "citybots_outbox_backlog",
            "Messages in the outbox due and not sent yet, by bot (counted at each scrape)",
            ["bot"],
            registry=self.registry,
        )
