"""Hand-off's Prometheus metrics (``leadrelay_handoff_*``), on the process's explicit registry.

What sales ops watch: where leads go (route, role), whether round robin is fair (each rep's
assignments next to their weight), why reps are passed over, how long a lead waits, and, as an
alert, leads nobody was eligible for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from leadrelay.metrics import LATENCY_BUCKETS
from services.handoff.domain import PoolFairness

WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
"""Seconds from the sales-ready (or reassignment) event's time to the assignment."""


_REGISTERED: WeakKeyDictionary[CollectorRegistry, HandoffMetrics] = WeakKeyDictionary()


@dataclass(frozen=True)
class HandoffMetrics:
    assignments: Counter
    rep_assignments: Counter
    rep_weight: Gauge
    reps_skipped: Counter
    no_eligible_rep: Counter
    decision_seconds: Histogram
    assignment_wait_seconds: Histogram
    share_expected: Gauge
    share_actual: Gauge
    largest_deviation: Gauge
    queue_depth: Gauge
    queue_oldest_age: Gauge

    @classmethod
    def of(cls, registry: CollectorRegistry) -> HandoffMetrics:
        """The metrics on ``registry``, registered the first time (the consumer and the queue
        API of one process share them)."""
        if registry not in _REGISTERED:
            _REGISTERED[registry] = cls.create(registry)
        return _REGISTERED[registry]

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
            share_expected=Gauge(
                "leadrelay_handoff_rep_share_expected",
                "Each rep's expected share of a rotation pool's leads (weight / pool weight)",
                ["pool", "rep_id"],
                registry=registry,
            ),
            share_actual=Gauge(
                "leadrelay_handoff_rep_share_actual",
                "Each rep's actual share of a pool's rotation leads over the fairness window",
                ["pool", "rep_id"],
                registry=registry,
            ),
            largest_deviation=Gauge(
                "leadrelay_handoff_fairness_largest_deviation",
                "The largest gap between a rep's actual and expected share, per rotation pool",
                ["pool"],
                registry=registry,
            ),
            queue_depth=Gauge(
                "leadrelay_handoff_queue_depth",
                "Leads waiting in a fallback queue with nobody on them",
                ["queue"],
                registry=registry,
            ),
            queue_oldest_age=Gauge(
                "leadrelay_handoff_queue_oldest_age_seconds",
                "How long the oldest lead of a fallback queue has waited",
                ["queue"],
                registry=registry,
            ),
        )

    def observe_fairness(self, report: Sequence[PoolFairness]) -> None:
        """Set the share gauges from a fairness report (after the assignment committed)."""
        for pool in report:
            self.largest_deviation.labels(pool.pool).set(pool.largest_deviation)
            for share in pool.shares:
                self.share_expected.labels(pool.pool, share.rep_id).set(share.expected)
                self.share_actual.labels(pool.pool, share.rep_id).set(share.actual)

    def observe_queues(self, depth: Mapping[str, int], oldest: Mapping[str, float]) -> None:
        """Set each queue's depth and oldest age (after the queue router's pass committed)."""
        for queue, count in depth.items():
            self.queue_depth.labels(queue).set(count)
            self.queue_oldest_age.labels(queue).set(oldest.get(queue, 0.0))
