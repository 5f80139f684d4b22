"""Hand-off's Prometheus metrics (``leadrelay_handoff_*``), on the process's explicit registry.

What sales ops watch: where leads go (route, role), whether round robin is fair (each rep's
assignments next to their weight), why reps are passed over, how long a lead waits, and, as an
alert, leads nobody was eligible for.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from leadrelay.metrics import LATENCY_BUCKETS

WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
"""Seconds from the sales-ready (or reassignment) event's time to the assignment."""


@dataclass(frozen=True)
class HandoffMetrics:
    assignments: Counter
    rep_assignments: Counter
    rep_weight: Gauge
    reps_skipped: Counter
    no_eligible_rep: Counter
    decision_seconds: Histogram
    assignment_wait_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> HandoffMetrics:
        """Register hand-off's metrics on ``registry`` (once per process)."""
        return cls(
            assignments=Counter(
                "leadrelay_handoff_assignments",
                "Assignments made, by route (account, rule, round_robin, fallback) and role",
                ["route", "role"],
                registry=registry,
            ),
            rep_assignments=Counter(
                "leadrelay_handoff_rep_assignments",
                "Assignments per rep; compare each rep's share with leadrelay_handoff_rep_weight",
                ["rep_id", "role"],
                registry=registry,
            ),
            rep_weight=Gauge(
                "leadrelay_handoff_rep_weight",
                "Each rep's round-robin weight as of the last decision",
                ["rep_id", "role"],
                registry=registry,
            ),
            reps_skipped=Counter(
                "leadrelay_handoff_reps_skipped",
                "Reps passed over by a routing decision, by reason",
                ["reason"],
                registry=registry,
            ),
            no_eligible_rep=Counter(
                "leadrelay_handoff_no_eligible_rep",
                "Leads no rep was eligible for (sent to the fallback queue); alert on any increase",
                ["role", "queue", "owned"],
                registry=registry,
            ),
            decision_seconds=Histogram(
                "leadrelay_handoff_decision_seconds",
                "Time to route one lead: reading roster, state and loads, and deciding",
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            assignment_wait_seconds=Histogram(
                "leadrelay_handoff_assignment_wait_seconds",
                "Time from the sales-ready or reassignment event until the assignment",
                ["route"],
                buckets=WAIT_BUCKETS,
                registry=registry,
            ),
        )
