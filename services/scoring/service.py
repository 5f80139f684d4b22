"""The scoring service on the runtime: what it consumes and the handlers that react.

``leadrelay run scoring`` and ``leadrelay up`` call :func:`build_service` with the process's
runtime and the definitions file's ``scorecard:`` section; tests call it the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from leadrelay.contracts.topics import Topic
from leadrelay.runtime.service import Runtime, ServiceSpec
from services.scoring.domain import Scorecard
from services.scoring.domain.config import RecycleCooldown
from services.scoring.handlers import OutputTopics, ScoringHandlers
from services.scoring.jobs.retention import visitor_retention
from services.scoring.metrics import ScoringMetrics

NAME: Final = "scoring"


def no_segment(_: int | None) -> str | None:
    """Lifecycle events without a segment (a caller that knows no routing)."""
    return None


CONSUMES: Final = (
    Topic.WEB_ACTIVITY,
    Topic.FORM_SUBMISSIONS,
    Topic.SALES_ACTIVITY,
    Topic.RECYCLED,
    Topic.ASSIGNMENTS,
)


def build_service(
    runtime: Runtime,
    scorecard: Scorecard,
    cooldown: RecycleCooldown | None = None,
    segment_for: Callable[[int | None], str | None] = no_segment,
) -> ServiceSpec:
    """Scoring with ``scorecard`` and the lifecycle's recycle ``cooldown``, its metrics
    registered on ``runtime.registry``; ``segment_for`` names a company size's routing segment
    in the lifecycle events."""
    metrics = ScoringMetrics.create(runtime.registry)
    handlers = ScoringHandlers(
        scorecard=scorecard,
        cooldown=cooldown,
        topics=OutputTopics(
            scores=runtime.topic(Topic.LEAD_SCORES),
            sales_ready=runtime.topic(Topic.SALES_READY),
            recycled=runtime.topic(Topic.RECYCLED),
            lifecycle=runtime.topic(Topic.LIFECYCLE),
        ),
        metrics=metrics,
        segment_for=segment_for,
    )
    retention = visitor_retention(
        runtime.store,
        scorecard.engagement.retention,
        metrics,
        every_seconds=runtime.settings.retention_sweep_seconds,
    )
    return ServiceSpec(
        name=NAME,
        consumes=CONSUMES,
        handlers=handlers.event_handlers(),
        background=[retention.run],
    )
