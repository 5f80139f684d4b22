"""Support for tests of the SLA monitor service: events, a fake clock, a store, the outbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from leadrelay.app.definitions import Definitions, load_definitions
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.contracts.events import RepSnapshot
from leadrelay.contracts.topics import Topic, topic_name
from leadrelay.store.engine import create_engine_for
from leadrelay.store.tables import outbox
from leadrelay.store.unit_of_work import Store
from services.sla_monitor.domain import AnnouncedDeadlines
from services.sla_monitor.service import SlaMonitor
from tests.unit import delivery

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
    """The shipped definitions: the monitor reads only their ``sla:`` section."""
    return load_definitions()


def handing_on() -> Definitions:
    """The shipped definitions with every SLA policy set to ``out_of_office: hand_on``."""
    shipped = definitions()
    policies = tuple(
        p.model_copy(update={"out_of_office": "hand_on"}) for p in shipped.sla.policies
    )
    return shipped.model_copy(update={"sla": shipped.sla.model_copy(update={"policies": policies})})


OFFICE = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
REPS: dict[str, dict[str, Any]] = {
    "rep-anna": {"time_zone": "Europe/Berlin", "team": "sdr-emea", "manager": "mgr-maria"},
    "rep-bob": {"time_zone": "Europe/Berlin", "team": "sdr-emea"},
    "rep-carl": {"time_zone": "Europe/Berlin", "team": "sdr-emea"},
    "rep-nina": {
        "time_zone": "America/New_York",
        "team": "sdr-amer",
        "working_hours": {d: ["08:00-12:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    },
}
"""The rep snapshots hand-off would send: Anna (manager Maria), Bob, Carl, Nina in New York."""


def rep_snapshot(rep_id: str) -> dict[str, Any] | None:
    """The snapshot of ``rep_id`` as ``lead_assigned`` carries it; None for an unknown rep."""
    known = REPS.get(rep_id)
    return None if known is None else {"working_hours": OFFICE, **known}


def announced(data: dict[str, Any]) -> dict[str, Any]:
    """The ``sla`` hand-off announces for this assignment's data under the shipped rules."""
    terms = AnnouncedDeadlines(definitions().sla)(
        role=data["role"],
        route=data["route"],
        team=data.get("team"),
        rep=RepSnapshot.model_validate(data["rep"]) if "rep" in data else None,
        assigned_at=datetime.fromisoformat(data["assigned_at"]),
    )
    return terms.model_dump(mode="json", exclude_none=True)


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
    rep: dict[str, Any] | Literal["roster"] | None = "roster",
    sla: dict[str, Any] | Literal["announced"] = "announced",
) -> CloudEvent:
    """A ``lead_assigned`` event (the shipped example with these facts).

    ``sla`` is what the event announces: by default the deadlines hand-off would announce with
    the shipped definitions (``AnnouncedDeadlines``); ``{}`` for an event that announces none.
    """
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
    data["rep"] = rep_snapshot(rep_id) if rep == "roster" else rep
    if data["rep"] is None:
        del data["rep"]
    data["sla"] = announced(data) if sla == "announced" else sla
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


def rep_updated(
    rep_id: str,
    at: datetime,
    away: Sequence[tuple[datetime, datetime]] = (),
    *,
    active: bool = True,
) -> CloudEvent:
    """A ``rep_updated`` from hand-off's roster API: the rep's snapshot and their absences."""
    data = {
        "rep_id": rep_id,
        "rep": rep_snapshot(rep_id),
        "out_of_office": [
            {"start": start.astimezone(UTC).isoformat(), "end": end.astimezone(UTC).isoformat()}
            for start, end in away
        ],
        "active": active,
        "updated_at": at.isoformat(),
    }
    return new_event(
        "leadrelay.rep_updated.v1",
        "/leadrelay/handoff",
        data,
        subject=rep_id,
        id=f"rep-updated-{rep_id}-{at.isoformat()}",
        time=at,
    )


def lead_recycled(at: datetime, *, reason: str, lead_key: str = LEAD) -> CloudEvent:
    """A ``lead_recycled`` event as scoring announces a rep's rejection."""
    data = {"lead_key": lead_key, "reason": reason, "recycled_at": at.isoformat()}
    return new_event(
        "leadrelay.lead_recycled.v1", "/leadrelay/scoring", data, subject=lead_key, time=at
    )


def marketing_activity(at: datetime, *, lead_key: str = LEAD) -> CloudEvent:
    """The MAP's acknowledgement of a recycled lead: it joined a nurture program."""
    data = {"lead_key": lead_key, "activity": "nurture_enrolled", "occurred_at": at.isoformat()}
    return new_event(
        "leadrelay.marketing_activity.v1", "/leadrelay/ingest/generic", data, subject=lead_key
    )


@dataclass
class Harness:
    """A migrated SQLite store with a fake clock and the SLA monitor built on it."""

    store: Store
    clock: FakeClock
    monitor: SlaMonitor
    registry: CollectorRegistry

    async def handle(self, event: CloudEvent) -> None:
        """What the consume loop does with ``event`` (minus Kafka): the handler in a transaction."""
        await delivery.apply(self.store, self.monitor.spec().handlers, event)


def build_monitor(
    store: Store,
    registry: CollectorRegistry,
    *,
    batch_size: int = 500,
    defs: Definitions | None = None,
) -> SlaMonitor:
    return SlaMonitor.create(
        store,
        (defs or definitions()).sla,
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
