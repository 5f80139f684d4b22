"""The hand-off handlers on a real SQLite store, without Kafka, and builders for their events.

``deliver`` does what the consume loop does around a handler (inbox row and handler in one
transaction); ``apply`` skips the inbox to show what the handlers themselves do with a fact they
have already acted on (e.g. a sales-ready event replayed under a new id).
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from leadrelay.app.definitions import Definitions, load_definitions
from leadrelay.app.tables import metadata
from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.contracts.topics import EventType
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store
from services.handoff.domain import Account, Rep, RosterConfig, RoutingConfig, cross_validate
from services.handoff.handlers import HandoffHandlers
from services.handoff.metrics import HandoffMetrics
from services.handoff.read_model import lead_view
from services.sla_monitor.domain import AnnouncedDeadlines
from tests.unit import delivery

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = json.loads(
    (ROOT / "schemas" / "examples" / "leadrelay.lead_sales_ready.v1.json").read_text()
)["data"]
ASSIGNMENTS = "assignments"
NOW = datetime(2025, 6, 4, 12, 0, tzinfo=UTC)
"""A Wednesday, midday UTC."""


def sales_ready_data(lead_key: str, *, episode: int = 1, **profile: Any) -> dict[str, Any]:
    """The schema's example sales-ready lead (demo form, DE, 850 people) as ``lead_key``.

    Graded B, so the default routing sends it to an SDR (grade A demo requests skip to an AE).
    ``profile`` overrides profile fields, e.g. ``country="US"``, ``email="x@acme.example"``.
    """
    data: dict[str, Any] = copy.deepcopy(EXAMPLE)
    data["lead_key"] = lead_key
    data["episode"] = episode
    data["grade"] = "B"
    data["profile"].update(profile)
    return data


def sales_ready(
    lead_key: str,
    *,
    episode: int = 1,
    event_id: str | None = None,
    time: datetime = NOW,
    **profile: Any,
) -> CloudEvent:
    return new_event(
        EventType.LEAD_SALES_READY.value,
        "/tests",
        sales_ready_data(lead_key, episode=episode, **profile),
        subject=lead_key,
        id=event_id or f"ready-{lead_key}-{episode}",
        time=time,
    )


def reassignment(
    lead_key: str,
    *,
    attempt: int,
    episode: int = 1,
    exclude: Sequence[str] = (),
    time: datetime = NOW,
) -> CloudEvent:
    return new_event(
        EventType.LEAD_REASSIGNMENT_REQUESTED.value,
        "/tests",
        {
            "lead_key": lead_key,
            "episode": episode,
            "attempt": attempt,
            "exclude_rep_ids": list(exclude),
            "reason": "sla_breached",
            "requested_at": time,
        },
        subject=lead_key,
        id=f"reassign-{lead_key}-{episode}-{attempt}",
        time=time,
    )


def definitions_with(
    reps: Sequence[Rep], accounts: Sequence[Account] = (), **routing: Any
) -> Definitions:
    """The shipped definitions with this roster and these routing fields."""
    shipped = load_definitions()
    routing_config = RoutingConfig.model_validate(shipped.routing.model_dump(mode="json") | routing)
    roster = RosterConfig(reps=tuple(reps), accounts=tuple(accounts))
    cross_validate(routing_config, roster.reps)
    return shipped.model_copy(update={"routing": routing_config, "roster": roster})


class MovableClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class HandoffHarness:
    def __init__(self, store: Store, clock: MovableClock, definitions: Definitions) -> None:
        self.store = store
        self.clock = clock
        self.registry = CollectorRegistry()
        self.handlers = HandoffHandlers(
            definitions.routing,
            definitions.roster,
            AnnouncedDeadlines(definitions.sla),
            ASSIGNMENTS,
            HandoffMetrics.create(self.registry),
        )

    async def deliver(self, *events: CloudEvent) -> None:
        await delivery.deliver(self.store, "handoff", self.handlers.consumed(), *events)

    async def deliver_batch(self, *events: CloudEvent) -> list[bool]:
        """The events in ONE transaction, as the consume loop applies a partition's batch."""
        return await delivery.deliver_batch(
            self.store, "handoff", self.handlers.consumed(), *events
        )

    async def apply(self, event: CloudEvent) -> None:
        await delivery.apply(self.store, self.handlers.consumed(), event)

    async def assigned(self) -> list[CloudEvent]:
        """Every ``lead_assigned`` queued so far, oldest first."""
        return await delivery.published(self.store, ASSIGNMENTS)

    async def view(self, lead_key: str) -> dict[str, Any] | None:
        async with self.store.engine.connect() as connection:
            return await lead_view(connection, lead_key)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def handoff_harness(
    directory: Path, definitions: Definitions
) -> AsyncIterator[HandoffHarness]:
    """A fresh SQLite file with every table, and the handlers on ``definitions``."""
    engine = create_engine_for(f"sqlite+aiosqlite:///{directory / 'handoff.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    clock = MovableClock()
    try:
        yield HandoffHarness(Store(engine, clock=clock), clock, definitions)
    finally:
        await engine.dispose()
