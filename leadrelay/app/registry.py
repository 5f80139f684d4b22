"""The services LeadRelay runs, built from real imports so mypy checks every wiring.

Each entry says what the composition root may build for a service: its consumer (handlers and
background loops), its HTTP routes, its part of the lead view, and where its migrations live.
Each builder receives only its own section of the definitions file; the lambda here is the one
place that knows which section that is. Hand-off also receives the SLA monitor's
``AnnouncedDeadlines`` through its own ``SlaDeadlines`` port: the deadlines it publishes are
counted by the SLA rules, and neither service imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType

from fastapi import APIRouter

import services.archive.migrations
import services.archive.service
import services.handoff.api
import services.handoff.migrations
import services.handoff.read_model
import services.handoff.service
import services.ingest.migrations
import services.reporting.api
import services.reporting.migrations
import services.reporting.service
import services.scoring.migrations
import services.scoring.read_model
import services.scoring.service
import services.sla_monitor.migrations
import services.sla_monitor.read_model
import services.sla_monitor.service
from leadrelay.app.definitions import Definitions
from leadrelay.calendar import business_time_between
from leadrelay.runtime.service import Runtime, ServiceSpec
from leadrelay.store.read_model import LeadViewPart
from services.reporting.domain import BusinessTime, RosterEntry
from services.sla_monitor.domain import AnnouncedDeadlines


def business_time(definitions: Definitions) -> BusinessTime:
    """Business time as reports count it: in the ``sla:`` section's default calendar."""
    return partial(business_time_between, definitions.sla.calendar())


def marketing_sla(definitions: Definitions) -> bool:
    """Whether the ``sla:`` section gives marketing a clock on recycled leads."""
    return definitions.sla.marketing is not None


def roster_weights(definitions: Definitions) -> dict[str, RosterEntry]:
    """Each rep's team and round-robin weight, from the ``roster:`` section."""
    return {rep.id: RosterEntry(rep.team, rep.weight) for rep in definitions.roster.reps}


ConsumerBuilder = Callable[[Runtime, Definitions], ServiceSpec]
RouterBuilder = Callable[[Runtime, Definitions], APIRouter]
LeadViewBuilder = Callable[[Runtime, Definitions], LeadViewPart]


@dataclass(frozen=True)
class ServiceEntry:
    """One service as the composition root sees it; a part it does not have is None."""

    name: str
    """The name ``leadrelay run NAME`` takes."""
    migrations: Path
    consumer: ConsumerBuilder | None = None
    router: RouterBuilder | None = None
    """Routes mounted on the public API beside ingest's (ingest hosts the API itself)."""
    lead_view: LeadViewBuilder | None = None


REGISTRY: tuple[ServiceEntry, ...] = (
    ServiceEntry("ingest", services.ingest.migrations.LOCATION),
    ServiceEntry(
        "scoring",
        services.scoring.migrations.LOCATION,
        consumer=lambda runtime, d: services.scoring.service.build_service(
            runtime, d.scorecard, d.lifecycle.recycle_cooldown, d.routing.segment_for
        ),
        lead_view=lambda runtime, d: services.scoring.read_model.lead_view_at_request(
            d.scorecard, runtime.store.clock
        ),
    ),
    ServiceEntry(
        "handoff",
        services.handoff.migrations.LOCATION,
        consumer=lambda runtime, d: services.handoff.service.build_service(
            runtime, d.routing, d.roster, AnnouncedDeadlines(d.sla)
        ),
        router=lambda runtime, d: services.handoff.api.build_router(
            runtime, d.routing, d.roster, AnnouncedDeadlines(d.sla)
        ),
        lead_view=lambda _runtime, _d: services.handoff.read_model.lead_view,
    ),
    ServiceEntry(
        "sla-monitor",
        services.sla_monitor.migrations.LOCATION,
        consumer=lambda runtime, d: services.sla_monitor.service.build_service(runtime, d.sla),
        lead_view=lambda _runtime, _d: services.sla_monitor.read_model.lead_view,
    ),
    ServiceEntry(
        "archive",
        services.archive.migrations.LOCATION,
        consumer=lambda runtime, _d: services.archive.service.build_service(runtime),
    ),
    ServiceEntry(
        "reporting",
        services.reporting.migrations.LOCATION,
        consumer=lambda runtime, d: services.reporting.service.build_service(
            runtime, business_time(d), roster_weights(d), marketing_sla=marketing_sla(d)
        ),
        router=lambda runtime, d: services.reporting.api.build_router(
            runtime, business_time(d), roster_weights(d), marketing_sla=marketing_sla(d)
        ),
    ),
)
"""In the order the lead view merges parts: scoring's first, since it decides the lead exists."""

SERVICES: tuple[str, ...] = tuple(entry.name for entry in REGISTRY)
CONSUMER_SERVICES: Mapping[str, ServiceEntry] = MappingProxyType(
    {entry.name: entry for entry in REGISTRY if entry.consumer is not None}
)
MIGRATION_BRANCHES: tuple[Path, ...] = tuple(entry.migrations for entry in REGISTRY)
