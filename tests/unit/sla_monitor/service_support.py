"""Support for tests of the SLA monitor service: events, a fake clock, a store, the outbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.contracts.topics import Topic, topic_name
from leadrelay.definitions import Definitions, load_definitions
from leadrelay.store.engine import create_engine_for
from leadrelay.store.migrate import upgrade_async
from leadrelay.store.tables import outbox
from leadrelay.store.unit_of_work import Store
from services.handoff.domain import RosterConfig
from services.sla_monitor.service import SlaMonitor

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"
LEAD = "lk_0123abcd"
PREFIX = "leadrelay."


class FakeClock:
    """The injected clock: time moves only when a test says so."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, at: datetime) -> None:
        self.now = at

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def definitions() -> Definitions:
    """The shipped SLA policies with a small roster: Anna (manager Maria), Bob, Carl."""
    shipped = load_definitions()
    roster = RosterConfig.model_validate(
        {
            "reps": [
                {
                    "id": "rep-anna",
                    "name": "Anna",
                    "role": "sdr",
                    "team": "sdr-emea",
                    "time_zone": "Europe/Berlin",
                    "manager": "mgr-maria",
                },
                {
                    "id": "rep-bob",
                    "name": "Bob",
                    "role": "sdr",
                    "team": "sdr-emea",
                    "time_zone": "Europe/Berlin",
                },
                {
                    "id": "rep-carl",
                    "name": "Carl",
                    "role": "sdr",
                    "team": "sdr-emea",
                    "time_zone": "Europe/Berlin",
                },
                {
                    "id": "rep-nina",
                    "name": "Nina",
                    "role": "sdr",
                    "team": "sdr-amer",
                    "time_zone": "America/New_York",
                    "working_hours": {
                        d: ["08:00-12:00"] for d in ("mon", "tue", "wed", "thu", "fri")
                    },
                },
            ]
        }
    )
    return shipped.model_copy(update={"roster": roster})


def _example_data(event_type: str) -> dict[str, Any]:
    document = json.loads((EXAMPLES / f"{event_type}.json").read_text(encoding="utf-8"))
    data: dict[str, Any] = document["data"]
    return data


def lead_assigned(
    assignment_id: str,
    rep_id: str,
    at: datetime,
    *,
    attempt: int = 1,
    episode: int = 1,
    lead_key: str = LEAD,
    team: str | None = "sdr-emea",
    role: str = "sdr",
) -> CloudEvent:
    """A ``lead_assigned`` event (the shipped example with these facts)."""
    data = _example_data("leadrelay.lead_assigned.v1")
    data.update(
        assignment_id=assignment_id,
        lead_key=lead_key,
        rep_id=rep_id,
        role=role,
        route="round_robin",
        team=team,
        episode=episode,
        attempt=attempt,
        assigned_at=at.isoformat(),
    )
    if team is None:
        del data["team"]
    return new_event(
        "leadrelay.lead_assigned.v1",
        "/tests",
        data,
        subject=lead_key,
        id=f"assigned-{assignment_id}",
        time=at,
    )


def sales_activity(
    outcome: str,
    rep_id: str,
    at: datetime,
    *,
    reason: str | None = None,
    assignment_id: str | None = None,
    lead_key: str = LEAD,
    event_id: str | None = None,
) -> CloudEvent:
    data: dict[str, Any] = {
        "lead_key": lead_key,
        "rep_id": rep_id,
        "outcome": outcome,
        "occurred_at": at.isoformat(),
    }
    if reason is not None:
        data["reason"] = reason
    if assignment_id is not None:
        data["assignment_id"] = assignment_id
    return new_event(
        "leadrelay.sales_activity.v1",
        "/tests",
        data,
        subject=lead_key,
        id=event_id or f"sales-{outcome}-{rep_id}-{at.isoformat()}",
        time=at,
    )


def lead_recycled(at: datetime, *, reason: str, lead_key: str = LEAD) -> CloudEvent:
    """A ``lead_recycled`` event as scoring announces a rep's rejection."""
    data = {"lead_key": lead_key, "reason": reason, "recycled_at": at.isoformat()}
    return new_event(
        "leadrelay.lead_recycled.v1", "/leadrelay/scoring", data, subject=lead_key, time=at
    )


@dataclass
class Harness:
    """A migrated SQLite store with a fake clock and the SLA monitor built on it."""

    store: Store
    clock: FakeClock
    monitor: SlaMonitor
    registry: CollectorRegistry

    async def handle(self, event: CloudEvent) -> None:
        """What the consume loop does with ``event`` (minus Kafka)."""
        handler = self.monitor.spec().handlers[event.type]
        async with self.store.transaction() as tx:
            await handler(event, tx)


def build_monitor(
    store: Store,
    registry: CollectorRegistry,
    *,
    batch_size: int = 500,
    defs: Definitions | None = None,
) -> SlaMonitor:
    return SlaMonitor.create(
        store,
        defs or definitions(),
        registry=registry,
        topic_name=lambda t: topic_name(t, PREFIX),
        poll_seconds=0.05,
        sweep_seconds=3600.0,
        batch_size=batch_size,
    )


async def harness(
    database_url: str, start: datetime, *, defs: Definitions | None = None
) -> AsyncIterator[Harness]:
    await upgrade_async(database_url)
    clock = FakeClock(start.astimezone(UTC))
    store = Store(create_engine_for(database_url), clock=clock)
    registry = CollectorRegistry()
    try:
        yield Harness(store, clock, build_monitor(store, registry, defs=defs), registry)
    finally:
        await store.dispose()


@dataclass(frozen=True)
class Emitted:
    topic: str
    type: str
    id: str
    subject: str | None
    data: dict[str, Any]


async def outbox_events(store: Store) -> list[Emitted]:
    """Everything queued for publishing, in order."""
    async with store.engine.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.topic, outbox.c.payload).order_by(outbox.c.id)
        )
        events = [(topic, CloudEvent.from_bytes(payload)) for topic, payload in rows.all()]
    return [Emitted(topic, e.type, e.id, e.subject, e.data) for topic, e in events]


def topic(t: Topic) -> str:
    return topic_name(t, PREFIX)
