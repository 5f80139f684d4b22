"""The SLA monitor service: clocks start on assignment, stop on sales activity, fire on time,
follow the rep's out-of-office from hand-off's roster events, and are forecast so a clock that
will not be met is announced (and, by policy, its lead handed on) before it breaches.

``build_service`` wires the pieces on the process's runtime; ``SlaMonitor.create`` does the same
from plain parts, so tests can run handlers and the firing loop on a store with a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.topics import EventType, Topic
from leadrelay.runtime.consumer import EventHandlers
from leadrelay.runtime.service import Runtime, ServiceSpec
from leadrelay.store.sweep import AgeSweep
from leadrelay.store.unit_of_work import Store, Transaction
from services.sla_monitor.domain import SlaConfig
from services.sla_monitor.handlers import SlaHandlers
from services.sla_monitor.jobs.firing import DEFAULT_BATCH_SIZE, FiringLoop
from services.sla_monitor.jobs.forecasting import AtRiskForecaster
from services.sla_monitor.jobs.parking import parked_activity_expiry
from services.sla_monitor.messages import ActionPublisher
from services.sla_monitor.metrics import SlaMetrics

NAME = "sla-monitor"


@dataclass(frozen=True)
class SlaMonitor:
    """The service's handlers, firing loop, forecaster and parked-activity expiry, sharing one
    set of metrics."""

    handlers: SlaHandlers
    firing: FiringLoop
    expiry: AgeSweep
    metrics: SlaMetrics
    forecaster: AtRiskForecaster

    @classmethod
    def create(
        cls,
        store: Store,
        sla: SlaConfig,
        *,
        registry: CollectorRegistry,
        topic_name: Callable[[Topic], str],
        poll_seconds: float,
        sweep_seconds: float,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int | None = None,
        forecast_seconds: float | None = None,
    ) -> SlaMonitor:
        """``forecast_seconds`` left out: the forecaster runs every ``poll_seconds``."""
        metrics = SlaMetrics.create(registry)
        publisher = ActionPublisher(topic_name)
        handlers = SlaHandlers(sla, metrics, publisher)
        firing = FiringLoop(
            store,
            publisher,
            metrics,
            poll_seconds=poll_seconds,
            batch_size=batch_size,
            workers=workers,
        )
        expiry = parked_activity_expiry(store, metrics, every_seconds=sweep_seconds)
        forecaster = AtRiskForecaster(
            store, sla, publisher, metrics, every_seconds=forecast_seconds or poll_seconds
        )
        return cls(handlers, firing, expiry, metrics, forecaster)

    def spec(self) -> ServiceSpec:
        return ServiceSpec(
            name=NAME,
            consumes=[Topic.ASSIGNMENTS, Topic.SALES_ACTIVITY, Topic.RECYCLED, Topic.ROSTER],
            handlers=self._batch_handlers(),
            background=[self.firing.run, self.expiry.run, self.forecaster.run],
        )

    def _batch_handlers(self) -> EventHandlers:
        """Each event by its type's handler, in order, after the batch locked every rep and
        lead it touches (``SlaHandlers.lock_batch``)."""
        each = EventHandlers.per_event(
            {
                EventType.LEAD_ASSIGNED: self.handlers.on_lead_assigned,
                EventType.SALES_ACTIVITY: self.handlers.on_sales_activity,
                EventType.LEAD_RECYCLED: self.handlers.on_lead_recycled,
                EventType.REP_UPDATED: self.handlers.on_rep_updated,
                EventType.MARKETING_ACTIVITY: self.handlers.on_marketing_activity,
            }
        )

        async def apply(events: Sequence[CloudEvent], tx: Transaction) -> None:
            await self.handlers.lock_batch(events, tx)
            await each.apply(events, tx)

        return EventHandlers(each.event_types, apply)


def build_service(runtime: Runtime, sla: SlaConfig) -> ServiceSpec:
    """The SLA monitor on its ``sla:`` section (what ``leadrelay run sla-monitor`` runs)."""
    settings = runtime.settings
    monitor = SlaMonitor.create(
        runtime.store,
        sla,
        registry=runtime.registry,
        topic_name=runtime.topic,
        poll_seconds=settings.sla_poll_seconds,
        sweep_seconds=settings.retention_sweep_seconds,
        forecast_seconds=max(
            settings.sla_poll_seconds, settings.sla_forecast_seconds / settings.clock_speed
        ),
    )
    return monitor.spec()
