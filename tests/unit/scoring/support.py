"""The scoring handlers on a real SQLite store, without Kafka: deliver events, read the outbox.

Delivery goes through the shared harness (``tests/unit/delivery.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import select

import services.scoring.tables
from leadrelay.app.definitions import load_definitions
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.store.engine import create_engine_for
from leadrelay.store.tables import metadata, outbox
from leadrelay.store.unit_of_work import Store
from services.scoring.domain import load_activities
from services.scoring.handlers import OutputTopics, ScoringHandlers
from services.scoring.metrics import ScoringMetrics
from services.scoring.read_model import lead_view
from services.scoring.repository import lead_states, load_lead
from services.scoring.tables import visitors
from tests.unit import delivery
from tests.unit.scoring.service_events import MovableClock

TOPICS = OutputTopics(
    scores="lead-scores", sales_ready="sales-ready", recycled="recycled", lifecycle="lifecycle"
)


class ScoringHarness:
    def __init__(self, store: Store, clock: MovableClock) -> None:
        self.store = store
        self.clock = clock
        self.registry = CollectorRegistry()
        self.scorecard = load_definitions().scorecard
        self.handlers = ScoringHandlers(
            self.scorecard, TOPICS, ScoringMetrics.create(self.registry)
        )

    async def deliver(self, *events: CloudEvent) -> None:
        await delivery.deliver(self.store, "scoring", self.handlers.event_handlers(), *events)

    async def deliver_batch(self, *events: CloudEvent) -> None:
        """The events in one transaction, as the consume loop applies a partition's batch."""
        await delivery.deliver_batch(self.store, "scoring", self.handlers.event_handlers(), *events)

    async def everything(self) -> dict[str, Any]:
        """Every lead's state, every visitor row and the outbox in order: to compare runs."""
        async with self.store.engine.connect() as connection:
            states = await lead_states(connection)
            rows = await connection.execute(select(visitors.c.anonymous_id, visitors.c.lead_key,
                                                   visitors.c.activities))  # fmt: skip
            parked = {row.anonymous_id: (row.lead_key, row.activities) for row in rows}
            queued = await connection.execute(
                select(outbox.c.topic, outbox.c.payload).order_by(outbox.c.id)
            )
            published = [(topic, CloudEvent.from_bytes(payload)) for topic, payload in queued]
        return {"states": states, "visitors": parked,
                "published": [(topic, e.id, e.type, e.data) for topic, e in published]}  # fmt: skip

    async def apply(self, event: CloudEvent) -> None:
        """The handler alone, as after a restore that lost the inbox."""
        await delivery.apply(self.store, self.handlers.event_handlers(), event)

    async def published(self, topic: str) -> list[CloudEvent]:
        return await delivery.published(self.store, topic)

    async def state(self, lead_key: str) -> Any:
        """The stored domain state (None if scoring never saw the lead)."""
        async with self.store.engine.connect() as connection:
            stored = await load_lead(connection, lead_key)
        return None if stored is None else stored.state

    async def parked(self, anonymous_id: str) -> list[str]:
        """Event ids of the activity an unlinked visitor keeps, waiting for a form."""
        async with self.store.engine.connect() as connection:
            query = select(visitors.c.activities).where(visitors.c.anonymous_id == anonymous_id)
            activities = (await connection.execute(query)).scalar_one()
        return [a.event_id for a in load_activities(activities)]

    async def view(self, lead_key: str, **options: Any) -> dict[str, Any] | None:
        async with self.store.engine.connect() as connection:
            return await lead_view(connection, lead_key, **options)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def scoring_harness(directory: Path) -> AsyncIterator[ScoringHarness]:
    """A fresh SQLite file with the runtime's and scoring's tables."""
    assert services.scoring.tables.leads.name in metadata.tables
    engine = create_engine_for(f"sqlite+aiosqlite:///{directory / 'scoring.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    clock = MovableClock()
    try:
        yield ScoringHarness(Store(engine, clock=clock), clock)
    finally:
        await engine.dispose()
