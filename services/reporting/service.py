"""The reporting service: consumes the public topics into its own table and keeps the headline
gauges current; the API mounts the report routes and the console on the same facts.

``leadrelay run reporting`` and ``leadrelay up`` call :func:`build_service`. The composition
root hands it plain inputs derived from the definitions: how business time is counted (the SLA
calendar) and each rep's team and round-robin weight; reporting imports no other service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from leadrelay.contracts.topics import Topic
from leadrelay.runtime.periodic import repeat
from leadrelay.runtime.service import Runtime, ServiceSpec
from services.reporting.domain import BusinessTime, RosterEntry, Window
from services.reporting.handlers import ReportingHandlers
from services.reporting.metrics import ReportingMetrics
from services.reporting.read_model import Reports

NAME: Final = "reporting"
CONSUMES: Final = (
    Topic.LIFECYCLE,
    Topic.ASSIGNMENTS,
    Topic.SLA_EVENTS,
    Topic.SALES_ACTIVITY,
    Topic.RECYCLED,
    Topic.LEAD_SCORES,
)
HEADLINE_SPAN: Final = timedelta(days=30)
"""The trailing window the gauges cover."""
HEADLINE_REFRESH_SECONDS: Final = 15.0


@dataclass(frozen=True)
class Headlines:
    """Keeps the headline gauges equal to the reports over the trailing window."""

    reports: Reports
    metrics: ReportingMetrics
    every_seconds: float = HEADLINE_REFRESH_SECONDS

    async def refresh(self) -> None:
        """Compute the funnel, speed-to-lead and SLA reports once and set the gauges."""
        end = self.reports.store.clock()
        window = Window(end - HEADLINE_SPAN, end)
        history = await self.reports.history(end)
        self.metrics.show(
            self.reports.compute("funnel", history, window, None),
            self.reports.compute("speed-to-lead", history, window, None),
            self.reports.compute("sla", history, window, "policy"),
        )

    async def run(self, stop: asyncio.Event) -> None:
        await repeat(stop, self.refresh, every=self.every_seconds, name="reporting headlines")


def build_service(
    runtime: Runtime,
    business_time: BusinessTime,
    roster: Mapping[str, RosterEntry],
    *,
    marketing_sla: bool = False,
) -> ServiceSpec:
    """Reporting on ``runtime``: the consumer of the public topics and the gauge refresher;
    ``marketing_sla``: the SLA report has marketing's policy row."""
    metrics = ReportingMetrics.create(runtime.registry)
    handlers = ReportingHandlers(metrics)
    headlines = Headlines(Reports(runtime.store, business_time, roster, marketing_sla), metrics)
    return ServiceSpec(
        name=NAME,
        consumes=CONSUMES,
        handlers=handlers.handlers(),
        background=[headlines.run],
    )
