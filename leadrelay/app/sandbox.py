"""Scoring, hand-off and the SLA monitor on one store, on a clock that jumps from event to event.

Production's pipeline without Kafka, for ``leadrelay replay`` (on a private in-memory database)
and for the tests that generate the production history replay reads (on the real database).
Each service runs its own handler table through the runtime's exactly-once step
(:func:`~leadrelay.runtime.consumer.apply_new`), and the SLA monitor's own firing loop fires due
clocks, so replay re-implements none of their rules. What a service publishes is read back from
the outbox after each transaction and offered to every service that handles its type, at the
moment the caller's :data:`Timing` says that service would have applied it (production's inbox
times, or a test's lags): the order of one lead's events across the services follows from it.

Between two deliveries, clocks that come due fire at their due time (production's loop wakes for
the earliest one). The forecaster (``at_risk``) and hand-off's queue router are not run: under
``at_risk: announce`` (the default) the first changes no outcome; the second matters only for
leads waiting in the fallback queue.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from leadrelay.app.definitions import Definitions
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.topics import Topic, topic_name
from leadrelay.runtime.consumer import EventHandlers, apply_new
from leadrelay.runtime.failure import is_retried_without_limit
from leadrelay.store.tables import outbox
from leadrelay.store.unit_of_work import Store
from services.handoff.handlers import HandoffHandlers
from services.handoff.metrics import HandoffMetrics
from services.handoff.service import NAME as HANDOFF
from services.scoring.handlers import OutputTopics, ScoringHandlers
from services.scoring.metrics import ScoringMetrics
from services.scoring.service import NAME as SCORING
from services.sla_monitor import repository as sla_repository
from services.sla_monitor.domain import AnnouncedDeadlines
from services.sla_monitor.jobs.firing import FiringLoop
from services.sla_monitor.service import NAME as SLA_MONITOR
from services.sla_monitor.service import SlaMonitor

SANDBOX_TOPICS = OutputTopics(
    scores=topic_name(Topic.LEAD_SCORES),
    sales_ready=topic_name(Topic.SALES_READY),
    recycled=topic_name(Topic.RECYCLED),
    lifecycle=topic_name(Topic.LIFECYCLE),
)
"""Topic names under the default prefix: only labels on outbox rows nothing relays."""
REPLAYED: tuple[str, ...] = (SCORING, HANDOFF, SLA_MONITOR)
Timing = Callable[[str, CloudEvent, datetime], datetime]
"""When service ``name`` applies ``event``, published (or received) at the given moment."""


BEFORE_ANY_HISTORY = datetime.min.replace(tzinfo=UTC)


class MovableClock:
    """The store's clock: the moment of the delivery (or firing) being applied."""

    def __init__(self, start: datetime = BEFORE_ANY_HISTORY) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def scoring_handlers(
    definitions: Definitions, topics: OutputTopics, metrics: ScoringMetrics
) -> ScoringHandlers:
    """Scoring's handlers under ``definitions``, given the sections the registry gives
    ``leadrelay run scoring``: the scorecard, the lifecycle's recycle cooldown and the routing
    segments (the lifecycle events' attributes)."""
    return ScoringHandlers(
        definitions.scorecard,
        topics,
        metrics,
        segment_for=definitions.routing.segment_for,
        cooldown=definitions.lifecycle.recycle_cooldown,
    )


@dataclass(frozen=True)
class Services:
    """The replayed services' handler tables and the SLA monitor's firing loop, on one store."""

    handlers: Mapping[str, EventHandlers]
    firing: FiringLoop

    @classmethod
    def of(cls, store: Store, definitions: Definitions) -> Services:
        """Each service under its sections of ``definitions``, as the registry wires it;
        metrics on a private registry nobody scrapes."""
        registry = CollectorRegistry()
        scoring = scoring_handlers(definitions, SANDBOX_TOPICS, ScoringMetrics.create(registry))
        handoff = HandoffHandlers(
            routing=definitions.routing,
            roster=definitions.roster,
            deadlines=AnnouncedDeadlines(definitions.sla),
            assignments_topic=topic_name(Topic.ASSIGNMENTS),
            metrics=HandoffMetrics.of(registry),
        )
        monitor = SlaMonitor.create(
            store, definitions.sla, registry=registry, topic_name=topic_name,
            poll_seconds=1.0, sweep_seconds=3600.0,
        )  # fmt: skip
        handlers = {
            SCORING: scoring.event_handlers(),
            HANDOFF: handoff.consumed(),
            SLA_MONITOR: monitor.spec().handlers,
        }
        return cls(handlers, monitor.firing)


@dataclass(order=True, frozen=True)
class _Delivery:
    at: datetime
    seq: int
    service: str = field(compare=False)
    event: CloudEvent = field(compare=False)


class Pipeline:
    """Deliveries in time order, each in its own transaction, and due clocks fired between them.

    ``consumer_prefix`` names the inbox consumers (``leadrelay.`` + service, as the consume loop
    names its groups); ``timing`` places what the services publish.
    """

    def __init__(
        self,
        store: Store,
        clock: MovableClock,
        services: Services,
        timing: Timing,
        *,
        consumer_prefix: str,
        extra: Mapping[str, EventHandlers] | None = None,
    ) -> None:
        self.store, self.clock, self.timing = store, clock, timing
        self.handlers = dict(services.handlers) | dict(extra or {})
        self.firing = services.firing
        self.prefix = consumer_prefix
        self.refused: dict[str, int] = dict.fromkeys(self.handlers, 0)
        self._queue: list[_Delivery] = []
        self._seq = itertools.count()
        self._outbox_seen = 0
        self._published = False
        self._due: datetime | None = None
        self._due_known = False
        store.on_outbox_commit(self._on_publish)

    def offer(self, event: CloudEvent, when: Callable[[str], datetime]) -> None:
        """Queue ``event`` for every service that handles its type, at ``when(service)``."""
        for name, handlers in self.handlers.items():
            if event.type in handlers.event_types:
                heapq.heappush(self._queue, _Delivery(when(name), next(self._seq), name, event))

    async def run(self, until: datetime | None = None) -> None:
        """Deliver everything queued (and what that publishes), firing clocks as they come due;
        then fire what comes due up to ``until`` (and deliver what that publishes)."""
        while True:
            due = await self._next_due()
            if due is not None and self._fires_first(due, until):
                await self._fire(due)
            elif self._queue:
                await self._deliver(heapq.heappop(self._queue))
            else:
                return

    def _fires_first(self, due: datetime, until: datetime | None) -> bool:
        if self._queue:
            return due < self._queue[0].at
        return until is not None and due <= until

    def _on_publish(self) -> None:
        self._published = True

    async def _next_due(self) -> datetime | None:
        """The earliest clock's fire time, read again only after the monitor's clocks changed."""
        if not self._due_known:
            async with self.store.read() as connection:
                self._due = await sla_repository.next_due(connection)
            self._due_known = True
        return self._due

    async def _fire(self, due: datetime) -> None:
        """Fire what is due at ``due``; a clock that stays due without firing is a bug."""
        self.clock.now = max(self.clock.now, due)
        report = await self.firing.drain()
        self._due_known = False
        if report.fired_clocks == 0 and report.quarantined == 0:
            raise RuntimeError(f"SLA clocks due at {due.isoformat()} did not fire")
        await self._collect()

    async def _deliver(self, delivery: _Delivery) -> None:
        """Apply one delivery; a refusal rolls its effects back and is counted, as production
        dead-letters it. An outage's error is not a refusal: it propagates."""
        self.clock.now = max(self.clock.now, delivery.at)
        handlers = self.handlers[delivery.service]
        self._due_known = self._due_known and delivery.service != SLA_MONITOR
        try:
            async with self.store.transaction() as tx:
                await apply_new(tx, self.prefix + delivery.service, handlers, [delivery.event])
        except Exception as error:  # named policy: outages propagate, refusals are counted
            if is_retried_without_limit(error):
                raise
            self.refused[delivery.service] += 1
        await self._collect()

    async def _collect(self) -> None:
        """Offer what the last transaction queued in the outbox to the services that consume it."""
        if not self._published:
            return
        self._published = False
        async with self.store.read() as connection:
            rows = (
                await connection.execute(
                    select(outbox.c.id, outbox.c.payload)
                    .where(outbox.c.id > self._outbox_seen)
                    .order_by(outbox.c.id)
                )
            ).all()
        published_at = self.clock.now
        for row_id, payload in rows:
            self._outbox_seen = row_id
            self._offer_published(CloudEvent.from_bytes(payload), published_at)

    def _offer_published(self, event: CloudEvent, published_at: datetime) -> None:
        self.offer(event, lambda service: self.timing(service, event, published_at))
