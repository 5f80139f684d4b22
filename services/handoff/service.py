"""The hand-off service on the runtime: what it consumes and the handlers that react.

``leadrelay run handoff`` and ``leadrelay up`` call :func:`build_service` with the process's
runtime and its sections of the definitions file; tests call it the same way. The roster is
kept in memory and reloaded when its version row moves (seeded from the ``roster:`` section on
first use, see ``repository``), so roster API edits apply to the next lead without a restart.
"""

from __future__ import annotations

from typing import Final

from leadrelay.contracts.topics import Topic
from leadrelay.runtime.service import Runtime, ServiceSpec
from services.handoff.domain import RosterConfig, RoutingConfig
from services.handoff.domain.ports import SlaDeadlines
from services.handoff.handlers import HandoffHandlers
from services.handoff.jobs.queue_router import QueueRouter
from services.handoff.metrics import HandoffMetrics

NAME: Final = "handoff"
CONSUMES: Final = (Topic.SALES_READY, Topic.ASSIGNMENTS, Topic.SALES_ACTIVITY)
"""``assignments`` carries reassignment requests (our own ``lead_assigned`` there is skipped);
``sales-activity`` tells when a rep is done with a lead, which frees their open capacity."""


def build_service(
    runtime: Runtime, routing: RoutingConfig, roster: RosterConfig, deadlines: SlaDeadlines
) -> ServiceSpec:
    """Hand-off on its ``routing:`` and ``roster:`` sections, metrics on the registry.

    ``deadlines`` counts the SLA deadlines each assignment announces (the composition root
    passes the SLA monitor's rules)."""
    handlers = handoff_handlers(runtime, routing, roster, deadlines)
    every = routing.fallback.route_again_every.total_seconds()
    router = QueueRouter(runtime.store, handlers, every_seconds=every)
    return ServiceSpec(
        name=NAME,
        consumes=CONSUMES,
        handlers=handlers.consumed(),
        background=[router.run],
    )


def handoff_handlers(
    runtime: Runtime, routing: RoutingConfig, roster: RosterConfig, deadlines: SlaDeadlines
) -> HandoffHandlers:
    """The handlers on ``runtime`` (the consumer's, and the queue API's for claims)."""
    return HandoffHandlers(
        routing=routing,
        roster=roster,
        deadlines=deadlines,
        assignments_topic=runtime.topic(Topic.ASSIGNMENTS),
        metrics=HandoffMetrics.of(runtime.registry),
    )
