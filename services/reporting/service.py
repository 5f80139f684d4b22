"""The reporting service: consumes the public topics into its own table and keeps the headline
gauges current; the API mounts the report routes and the console on the same facts.

``leadrelay run reporting`` and ``leadrelay up`` call :func:`build_service`; the API process
calls :func:`reports_for`. Business time is counted in the definitions' default SLA calendar,
and the weighted shares come from the definitions' roster.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Final

from leadrelay.contracts.topics import Topic
from leadrelay.definitions import Definitions
from leadrelay.runtime.periodic import repeat
from leadrelay.runtime.service import Runtime, ServiceSpec
from leadrelay.store.unit_of_work import Store
from services.reporting.domain import RosterEntry, Window
from services.reporting.handlers import ReportingHandlers
from services.reporting.metrics import ReportingMetrics
from services.reporting.read_model import Reports
from services.sla_monitor.domain.calendar import business_time_between

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


def reports_for(store: Store, definitions: Definitions) -> Reports:
    """The reports on ``store``, in the definitions' calendar and roster."""
    calendar = definitions.sla.calendar()
    roster = {rep.id: RosterEntry(rep.team, rep.weight) for rep in definitions.roster.reps}
    return Reports(store, partial(business_time_between, calendar), roster)


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


def build_service(runtime: Runtime, definitions: Definitions) -> ServiceSpec:
    """Reporting on ``runtime``: the consumer of the public topics and the gauge refresher."""
    metrics = ReportingMetrics.create(runtime.registry)
    handlers = ReportingHandlers(metrics)
    headlines = Headlines(reports_for(runtime.store, definitions), metrics)
    return ServiceSpec(
        name=NAME, consumes=CONSUMES, handlers=handlers.table(), background=[headlines.run]
    )
