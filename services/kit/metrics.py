"""Prometheus metrics every service exposes on `GET /metrics`."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.events_consumed = Counter(
            "oms_events_consumed_total",
            "Events consumed, by outcome (handled, duplicate, ignored, dead_lettered)",
            ["service", "topic", "outcome"],
            registry=self.registry,
        )
        self.events_published = Counter(
            "oms_events_published_total",
            "Events published by the outbox relay",
            ["service"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "oms_handler_seconds",
            "Time to handle one consumed event, transaction included",
            ["service", "event_type"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "oms_dead_letters_total",
            "Events sent to the dead-letter topic",
            ["service", "error_class"],
            registry=self.registry,
        )
        self.inbox_duplicates = Counter(
            "oms_inbox_duplicates_total",
            "Redelivered events skipped by the inbox",
            ["service"],
            registry=self.registry,
        )
        self.transient_retries = Counter(
            "oms_transient_retries_total",
            "Retries of a delivery after a transient failure",
            ["service"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "oms_outbox_backlog",
            "Unsent outbox events seen by the relay's last read (capped at its batch size)",
            ["service"],
            registry=self.registry,
        )
