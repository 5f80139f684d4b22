"""The archive's Prometheus metrics (``leadrelay_archive_*``), on the process's registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True)
class ArchiveMetrics:
    events_archived: Counter
    events_forgotten: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ArchiveMetrics:
        """Register the archive's metrics on ``registry`` (once per process)."""
        return cls(
            events_archived=Counter(
                "leadrelay_archive_events_archived",
                "Input events kept for replay, by event type",
                ["event_type"],
                registry=registry,
            ),
            events_forgotten=Counter(
                "leadrelay_archive_events_forgotten",
                "Archived events deleted once older than the archive retention",
                registry=registry,
            ),
        )
