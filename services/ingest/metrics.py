"""Ingest's Prometheus metrics, on the process's registry (see ``leadrelay.metrics``)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from leadrelay.metrics import LATENCY_BUCKETS


@dataclass(frozen=True)
class IngestMetrics:
    """Requests by route and status, accepted events, latency and signature failures."""

    requests: Counter
    events_accepted: Counter
    request_seconds: Histogram
    signature_failures: Counter
    duplicate_deliveries: Counter
    history_unavailable: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> IngestMetrics:
        """Register ingest's metrics on ``registry``."""
        return cls(
            requests=Counter(
                "leadrelay_ingest_requests",
                "HTTP requests answered",
                ["route", "status"],
                registry=registry,
            ),
            events_accepted=Counter(
                "leadrelay_ingest_events_accepted",
                "Events acknowledged by the broker (acks=all)",
                ["type"],
                registry=registry,
            ),
            request_seconds=Histogram(
                "leadrelay_ingest_request_seconds",
                "Time to answer a request, produce included",
                ["route"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            signature_failures=Counter(
                "leadrelay_ingest_signature_failures",
                "Requests refused with 401, by reason",
                ["route", "reason"],
                registry=registry,
            ),
            duplicate_deliveries=Counter(
                "leadrelay_ingest_duplicate_deliveries",
                "Signed retries of deliveries already accepted (answered 202, nothing produced)",
                ["route"],
                registry=registry,
            ),
            history_unavailable=Counter(
                "leadrelay_ingest_history_unavailable",
                "Deliveries accepted without the replay check: the state store was unreachable",
                ["route"],
                registry=registry,
            ),
        )
