"""The production the replay tests read: scoring, hand-off, the SLA monitor and the archive fed a
generated history, with reps who react to their assignments.

Production runs the services' own handlers and firing loop on the test's database through the
same event-to-event driver replay uses (:class:`~leadrelay.app.sandbox.Pipeline`), but each
consumer group applies events a lag after they were published (other moments than the sandbox's,
which reads them from the inbox), the archive a minute late.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from leadrelay.app.definitions import Definitions, load_definitions
from leadrelay.app.replay import SandboxRun, last_recorded, read_run
from leadrelay.app.sandbox import MovableClock, Pipeline, Services
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.contracts.events import LeadAssigned, parse_as
from leadrelay.contracts.topics import EventType
from leadrelay.runtime.consumer import EventHandlers
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store, Transaction
from services.archive.handlers import ArchiveHandlers
from services.archive.metrics import ArchiveMetrics
from tests.integration.replay.history import Lead, generate
from tests.unit.scoring.service_events import T0

LAGS: Mapping[str, timedelta] = {
    "scoring": timedelta(seconds=3),
    "handoff": timedelta(seconds=5),
    "sla-monitor": timedelta(seconds=7),
    "archive": timedelta(minutes=1),
    "reps": timedelta(0),
    "reporting": timedelta(seconds=2),
}
"""How long after an event is published each consumer group applies it."""
RUNS_FOR = timedelta(days=6)
"""Production runs this long after T0 (every ladder has run out by then)."""
SLA_EVENTS = frozenset(
    t.value for t in (EventType.SLA_WARNING, EventType.SLA_BREACHED, EventType.SLA_ESCALATED)
)
REACTIONS: Mapping[str, tuple[tuple[timedelta, str], ...]] = {
    "quick": ((timedelta(minutes=10), "contacted"), (timedelta(minutes=20), "accepted")),
    "slow": ((timedelta(minutes=45), "contacted"), (timedelta(minutes=50), "accepted")),
    "silent": (),
    "rejecter": ((timedelta(minutes=15), "rejected"),),
}
"""What a rep reports, and how long after the assignment, for each fate."""


class Production:
    """The services, as deployed, on the test's database; ``reps`` report on their leads."""

    def __init__(
        self, store: Store, clock: MovableClock, definitions: Definitions, fates: Mapping[str, str]
    ) -> None:
        self.store, self.clock, self.fates = store, clock, fates
        archive = ArchiveHandlers(ArchiveMetrics.create(CollectorRegistry())).handlers()
        extra = {
            "archive": archive,
            "reps": EventHandlers(frozenset({EventType.LEAD_ASSIGNED.value}), self._react),
            "reporting": EventHandlers(SLA_EVENTS, _ignore),  # reporting's group, in the inbox
        }
        self.pipeline = Pipeline(
            store, self.clock, Services.of(store, definitions), _lagged,
            consumer_prefix="leadrelay.", extra=extra,
        )  # fmt: skip

    async def receive(self, events: Sequence[CloudEvent]) -> None:
        """The events arrive at their times; production runs until ``RUNS_FOR`` after T0."""
        for event in events:
            self._offer(event)
        await self.pipeline.run(until=T0 + RUNS_FOR)

    async def recorded(self) -> SandboxRun:
        async with self.store.engine.connect() as connection:
            return await read_run(connection, await last_recorded(connection))

    def _offer(self, event: CloudEvent) -> None:
        self.pipeline.offer(event, lambda service: event.time + LAGS[service])

    async def _react(self, events: Sequence[CloudEvent], _tx: Transaction) -> None:
        """The rep plays the lead's fate on its first assignment, and is quick on a later one."""
        for event in events:
            assigned = parse_as(event, LeadAssigned)
            if assigned.route == "fallback":
                continue
            fate = self.fates.get(assigned.lead_key, "quick") if assigned.attempt == 1 else "quick"
            for after, outcome in REACTIONS[fate]:
                self._offer(_activity(assigned, outcome, assigned.assigned_at + after))


async def _ignore(_events: Sequence[CloudEvent], _tx: Transaction) -> None:
    """Reporting's consumption, reduced to its inbox rows (replay reads when production ended)."""


def _lagged(service: str, _event: CloudEvent, published_at: datetime) -> datetime:
    return published_at + LAGS[service]


def _activity(assigned: LeadAssigned, outcome: str, at: datetime) -> CloudEvent:
    """The rep's report, as a CRM sends it to ingest."""
    data = {"lead_key": assigned.lead_key, "rep_id": assigned.rep_id, "outcome": outcome,
            "occurred_at": at, "assignment_id": assigned.assignment_id}  # fmt: skip
    if outcome == "rejected":
        data["reason"] = "no budget"
    event_id = f"{assigned.assignment_id}-{outcome}"
    event = new_event(EventType.SALES_ACTIVITY.value, "tests", data, id=event_id,
                      subject=assigned.lead_key, time=at)  # fmt: skip
    return CloudEvent.from_bytes(event.to_bytes())


@pytest.fixture
async def production(database_url: str) -> AsyncIterator[tuple[Production, list[Lead], str]]:
    await upgrade_async(database_url)
    engine = create_engine_for(database_url)
    leads, events = generate()
    clock = MovableClock(T0)
    fates = {lead.key: lead.fate for lead in leads}
    prod = Production(Store(engine, clock=clock), clock, load_definitions(), fates)
    await prod.receive(events)
    yield prod, leads, database_url
    await engine.dispose()
