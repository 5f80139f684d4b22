"""Scoring's Prometheus metrics (``leadrelay_scoring_*``), on the process's explicit registry.

The runtime already counts messages and times handlers; these say what scoring decided: how
much it scored, how leads move through the lifecycle and how many became sales-ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

SCORING_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Seconds from an event's CloudEvent ``time`` to its scoring: the delay a lead waits."""


@dataclass(frozen=True)
class ScoringMetrics:
    events_scored: Counter
    stage_transitions: Counter
    sales_outcomes_ignored: Counter
    sales_ready: Counter
    latency: Histogram
    visitors_forgotten: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ScoringMetrics:
        """Register scoring's metrics on ``registry`` (once per process)."""
        return cls(
            events_scored=Counter(
                "leadrelay_scoring_events_scored",
                "Events applied to a lead or visitor, by event type",
                ["event_type"],
                registry=registry,
            ),
            stage_transitions=Counter(
                "leadrelay_scoring_stage_transitions",
                "Lifecycle stage changes, by from and to stage",
                ["from_stage", "to_stage"],
                registry=registry,
            ),
            sales_outcomes_ignored=Counter(
                "leadrelay_scoring_sales_outcomes_ignored",
                "Sales outcomes the lead's stage rules out: on its timeline, not retried",
                ["outcome", "stage"],
                registry=registry,
            ),
            sales_ready=Counter(
                "leadrelay_scoring_sales_ready",
                "Leads that became sales-ready (one per episode), by fit grade",
                ["grade"],
                registry=registry,
            ),
            latency=Histogram(
                "leadrelay_scoring_latency_seconds",
                "Time from an event's CloudEvent time until scoring applied it",
                ["event_type"],
                buckets=SCORING_LATENCY_BUCKETS,
                registry=registry,
            ),
            visitors_forgotten=Counter(
                "leadrelay_scoring_visitors_forgotten",
                "Unidentified visitors deleted after idling for the scorecard's retention",
                registry=registry,
            ),
        )
