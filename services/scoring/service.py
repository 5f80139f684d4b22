"""The scoring service on the runtime: what it consumes and the handlers that react.

``leadrelay run scoring`` and ``leadrelay up`` call :func:`build_service` with the process's
runtime and the definitions file; tests call it the same way.
"""

from __future__ import annotations

from typing import Final

from leadrelay.contracts.topics import Topic
from leadrelay.definitions import Definitions
from leadrelay.runtime.service import Runtime, ServiceSpec
from services.scoring.handlers import OutputTopics, ScoringHandlers
from services.scoring.metrics import ScoringMetrics
from services.scoring.retention import VisitorRetention

NAME: Final = "scoring"
CONSUMES: Final = (Topic.WEB_ACTIVITY, Topic.FORM_SUBMISSIONS, Topic.SALES_ACTIVITY, Topic.RECYCLED)


def build_service(runtime: Runtime, definitions: Definitions) -> ServiceSpec:
    """Scoring with ``definitions.scorecard``, its metrics registered on ``runtime.registry``."""
    metrics = ScoringMetrics.create(runtime.registry)
    handlers = ScoringHandlers(
        scorecard=definitions.scorecard,
        topics=OutputTopics(
            scores=runtime.topic(Topic.LEAD_SCORES),
            sales_ready=runtime.topic(Topic.SALES_READY),
            recycled=runtime.topic(Topic.RECYCLED),
            lifecycle=runtime.topic(Topic.LIFECYCLE),
        ),
        metrics=metrics,
        segment_for=definitions.routing.segment_for,
    )
    retention = VisitorRetention(
        runtime.store,
        definitions.scorecard.engagement.retention,
        metrics,
        every_seconds=runtime.settings.retention_sweep_seconds,
    )
    return ServiceSpec(
        name=NAME, consumes=CONSUMES, handlers=handlers.table(), background=[retention.run]
    )
