"""The archive on the runtime: the input topics in, one table of what arrived out.

Replay must not depend on Kafka's retention, nor on any service's state (scoring forgets old
activity as it scores), so LeadRelay keeps its own copy of the inputs, with the time each
arrived, in a consumer group of its own. It publishes nothing and no service reads its table;
only the composition root's ``leadrelay replay`` and ``leadrelay calibrate`` do.
"""

from __future__ import annotations

from typing import Final

from leadrelay.contracts.topics import Topic
from leadrelay.runtime.service import Runtime, ServiceSpec
from services.archive.handlers import ArchiveHandlers
from services.archive.jobs.retention import archive_retention
from services.archive.metrics import ArchiveMetrics

NAME: Final = "archive"
CONSUMES: Final = (Topic.WEB_ACTIVITY, Topic.FORM_SUBMISSIONS, Topic.SALES_ACTIVITY, Topic.RECYCLED)


def build_service(runtime: Runtime) -> ServiceSpec:
    """The archive, keeping events for ``settings.archive_retention``."""
    metrics = ArchiveMetrics.create(runtime.registry)
    retention = archive_retention(
        runtime.store,
        runtime.settings.archive_retention,
        metrics,
        every_seconds=runtime.settings.retention_sweep_seconds,
    )
    return ServiceSpec(
        name=NAME,
        consumes=CONSUMES,
        handlers=ArchiveHandlers(metrics).handlers(),
        background=[retention.run],
    )
