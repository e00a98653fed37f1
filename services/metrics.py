"""Prometheus counters, one registry per running platform (so tests do not share one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
