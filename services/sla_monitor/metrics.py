"""The SLA monitor's Prometheus metrics (``leadrelay_sla_*``) on the process's explicit registry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FIRST_TOUCH_BUCKETS = (
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    28800.0,
    86400.0,
    172800.0,
    604800.0,
)
"""One minute to one week: first touch is promised in business hours, so nights and weekends
stretch it in wall-clock seconds."""
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


@dataclass(frozen=True)
class SlaMetrics:
    """How fast sales acts, how often it does not, and how late the monitor notices."""

    time_to_first_touch: Histogram
    breaches: Counter
    open_clocks: Gauge
    firing_lag: Histogram
    actions: Counter
    parked_activity: Counter
    quarantined_clocks: Counter
    at_risk: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> SlaMetrics:
        """Register the SLA metrics on ``registry``."""
        return cls(
            time_to_first_touch=Histogram(
                "leadrelay_sla_time_to_first_touch_seconds",
                "Wall-clock time from assignment to the rep's first contact (attempt)",
                ["role", "team"],
                buckets=FIRST_TOUCH_BUCKETS,
                registry=registry,
            ),
            breaches=Counter(
                "leadrelay_sla_breaches",
                "SLA deadlines passed without the awaited activity",
                ["policy", "team", "rep"],
                registry=registry,
            ),
            open_clocks=Gauge(
                "leadrelay_sla_open_clocks",
                "Clocks neither completed nor stopped, by state",
                ["state"],
                registry=registry,
            ),
            firing_lag=Histogram(
                "leadrelay_sla_firing_lag_seconds",
                "From the moment a step was due to its events being committed to the outbox",
                buckets=LAG_BUCKETS,
                registry=registry,
            ),
            actions=Counter(
                "leadrelay_sla_actions", "SLA events emitted, by step", ["step"], registry=registry
            ),
            parked_activity=Counter(
                "leadrelay_sla_parked_activity",
                "Sales activity that arrived before its assignment: parked, applied later, or "
                "expired with no assignment",
                ["outcome"],
                registry=registry,
            ),
            quarantined_clocks=Counter(
                "leadrelay_sla_clocks_quarantined",
                "Clocks set aside (state failed) because firing them raised: they will not fire",
                registry=registry,
            ),
            at_risk=Counter(
                "leadrelay_sla_at_risk",
                "Running clocks forecast not to be met (sla_at_risk), by what was done: "
                "announced, or the lead reassigned before the breach",
                ["policy", "team", "action"],
                registry=registry,
            ),
        )
