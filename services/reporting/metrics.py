"""Reporting's Prometheus metrics (``leadrelay_reporting_*``): the headline numbers as gauges.

The gauges are the reports' numbers over a trailing window, refreshed by the service's
background task, so a Grafana panel shows what the console and ``/v1/reports`` show.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.reporting.domain import Report


@dataclass(frozen=True)
class ReportingMetrics:
    """Facts kept, and the numbers both teams read."""

    facts: Counter
    stage_conversion: Gauge
    sla_compliance: Gauge
    forecast_precision: Gauge
    forecast_recall: Gauge
    speed_to_lead: Gauge
    touched_within: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ReportingMetrics:
        """Register the reporting metrics on ``registry``."""
        return cls(
            facts=Counter(
                "leadrelay_reporting_facts",
                "Events reporting consumed and kept as facts, by event type",
                ["event_type"],
                registry=registry,
            ),
            stage_conversion=Gauge(
                "leadrelay_reporting_stage_conversion_ratio",
                "Share of the leads entering a stage that moved forward (trailing window)",
                ["stage"],
                registry=registry,
            ),
            sla_compliance=Gauge(
                "leadrelay_reporting_sla_compliance_ratio",
                "SLA clocks met / (met + breached), per policy (trailing window)",
                ["policy"],
                registry=registry,
            ),
            forecast_precision=Gauge(
                "leadrelay_reporting_sla_forecast_precision_ratio",
                "Of the decided SLA clocks forecast at risk, the share that breached, per policy "
                "(trailing window)",
                ["policy"],
                registry=registry,
            ),
            forecast_recall=Gauge(
                "leadrelay_reporting_sla_forecast_recall_ratio",
                "Of the breached SLA clocks, the share forecast at risk beforehand, per policy "
                "(trailing window)",
                ["policy"],
                registry=registry,
            ),
            speed_to_lead=Gauge(
                "leadrelay_reporting_speed_to_lead_seconds",
                "Quantiles of the wall-clock time from qualifying to assignment or first touch",
                ["measure", "quantile"],
                registry=registry,
            ),
            touched_within=Gauge(
                "leadrelay_reporting_touched_within_ratio",
                "Share of qualified leads first touched within 5 minutes or 1 hour",
                ["within"],
                registry=registry,
            ),
        )

    def show(self, funnel: Report, speed: Report, sla: Report) -> None:
        """Set the gauges from the overall (``by=all``) funnel, speed-to-lead and per-policy SLA
        reports; a number without a value (nothing to divide) is left out."""
        for row in funnel.rows:
            _show(self.stage_conversion, (str(row["stage"]),), row["conversion"])
        for row in sla.rows:
            policy = (str(row["policy"]),)
            _show(self.sla_compliance, policy, row["compliance"])
            _show(self.forecast_precision, policy, row["forecast_precision"])
            _show(self.forecast_recall, policy, row["forecast_recall"])
        for row in speed.rows:
            for measure in ("assignment", "first_touch"):
                for q in ("p50", "p90", "p95"):
                    _show(self.speed_to_lead, (measure, q), row[f"{measure}_{q}_seconds"])
            _show(self.touched_within, ("5m",), row["touched_within_5m"])
            _show(self.touched_within, ("1h",), row["touched_within_1h"])


def _show(gauge: Gauge, labels: tuple[str, ...], value: object) -> None:
    """Set the labelled gauge; a value that is not there (yet, or any more) removes it."""
    if isinstance(value, int | float):
        gauge.labels(*labels).set(value)
        return
    with contextlib.suppress(KeyError):  # never set: nothing to remove
        gauge.remove(*labels)
