"""The production the replay tests read: scoring and the archive fed a generated history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from leadrelay.app.definitions import Definitions, load_definitions
from leadrelay.app.replay import scoring_handlers
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.events import LeadSalesReady, parse_as
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store
from services.archive.handlers import ArchiveHandlers
from services.archive.metrics import ArchiveMetrics
from services.scoring.domain import LeadState
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import lead_states
from tests.integration.replay.history import Lead, generate
from tests.unit import delivery
from tests.unit.scoring.service_events import MovableClock
from tests.unit.scoring.support import TOPICS

PROCESSING_LAG = timedelta(seconds=3)
"""How long after its CloudEvent time production's scoring applies each event."""
ARCHIVE_LAG = timedelta(minutes=1)
SCORING_GROUP = "leadrelay.scoring"
"""The consumer group (and inbox consumer) of scoring under the default topic prefix."""


class Production:
    """Scoring and the archive, as deployed, on the test's database."""

    def __init__(self, store: Store, clock: MovableClock, definitions: Definitions) -> None:
        self.store, self.clock = store, clock
        registry = CollectorRegistry()
        self.scoring = scoring_handlers(
            definitions, TOPICS, ScoringMetrics.create(registry)
        ).event_handlers()
        self.archive = ArchiveHandlers(ArchiveMetrics.create(registry)).table()

    async def receive(self, events: list[CloudEvent]) -> None:
        """Scoring's group reads the events in order; the archive's group reads them a minute
        later, lead by lead: another interleaving of the partitions, at other moments."""
        for event in events:
            self.clock.now = event.time + PROCESSING_LAG
            if event.type in self.scoring.event_types:
                await delivery.deliver(self.store, SCORING_GROUP, self.scoring, event)
        for event in sorted(events, key=lambda e: (e.subject or "", e.time)):
            self.clock.now = event.time + ARCHIVE_LAG
            await delivery.deliver(self.store, "leadrelay.archive", self.archive, event)

    async def states(self) -> dict[str, LeadState]:
        async with self.store.engine.connect() as connection:
            return await lead_states(connection)

    async def handoffs(self) -> tuple[LeadSalesReady, ...]:
        published = await delivery.published(self.store, TOPICS.sales_ready)
        return tuple(parse_as(event, LeadSalesReady) for event in published)


@pytest.fixture
async def production(database_url: str) -> AsyncIterator[tuple[Production, list[Lead], str]]:
    await upgrade_async(database_url)
    engine = create_engine_for(database_url)
    clock = MovableClock()
    prod = Production(Store(engine, clock=clock), clock, load_definitions())
    leads, events = generate()
    await prod.receive(events)
    yield prod, leads, database_url
    await engine.dispose()
