"""The runtime's Prometheus metrics, on an explicit registry built once per process.

An explicit ``CollectorRegistry`` (not the global default) lets one process host several
services, and lets tests build as many as they like without "duplicated timeseries" errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class RuntimeMetrics:
    """Consumer, dead-letter and outbox metrics shared by every service."""

    registry: CollectorRegistry
    consumed: Counter
    processed: Counter
    duplicates: Counter
    failed: Counter
    dead_lettered: Counter
    handler_seconds: Histogram
    consumer_lag: Gauge
    outbox_backlog: Gauge
    outbox_published: Counter
    retention_deleted: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> RuntimeMetrics:
        """Register the runtime's metrics on ``registry``."""
        labels = ["group", "topic"]
        return cls(
            registry=registry,
            consumed=Counter(
                "leadrelay_messages_consumed",
                "Messages fetched from Kafka",
                labels,
                registry=registry,
            ),
            processed=Counter(
                "leadrelay_messages_processed",
                "Messages whose effect committed",
                labels,
                registry=registry,
            ),
            duplicates=Counter(
                "leadrelay_messages_duplicate",
                "Redelivered messages recognised by the inbox and skipped",
                labels,
                registry=registry,
            ),
            failed=Counter(
                "leadrelay_messages_failed",
                "Handler attempts that failed",
                [*labels, "reason"],
                registry=registry,
            ),
            dead_lettered=Counter(
                "leadrelay_messages_dead_lettered",
                "Messages sent to the dead-letter topic",
                [*labels, "reason"],
                registry=registry,
            ),
            handler_seconds=Histogram(
                "leadrelay_handler_seconds",
                "Time to process one message, transaction included",
                ["group", "event_type"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            consumer_lag=Gauge(
                "leadrelay_consumer_lag",
                "Messages behind the partition's high watermark",
                [*labels, "partition"],
                registry=registry,
            ),
            outbox_backlog=Gauge(
                "leadrelay_outbox_backlog", "Committed events not yet published", registry=registry
            ),
            outbox_published=Counter(
                "leadrelay_outbox_published", "Events published from the outbox", registry=registry
            ),
            retention_deleted=Counter(
                "leadrelay_retention_deleted",
                "Inbox and sent-outbox rows deleted once older than the state retention",
                ["table"],
                registry=registry,
            ),
        )
