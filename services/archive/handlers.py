"""One handler for every archived event type: keep the event as it arrived.

The consume loop has deduplicated the event and opened the transaction, so the row commits
with the inbox row or not at all; a repeated id (an inbox lost in a restore) is kept once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.topics import EventType
from leadrelay.runtime.consumer import Handler
from leadrelay.store.unit_of_work import Transaction
from services.archive.metrics import ArchiveMetrics
from services.archive.repository import archive_event

ARCHIVED_TYPES: tuple[EventType, ...] = (
    EventType.WEB_ACTIVITY,
    EventType.FORM_SUBMITTED,
    EventType.SALES_ACTIVITY,
    EventType.LEAD_RECYCLED,
)
"""The inputs replay re-runs: what people did, what sales reported, what was sent back."""


@dataclass(frozen=True)
class ArchiveHandlers:
    metrics: ArchiveMetrics

    def table(self) -> Mapping[str, Handler]:
        """Event type -> handler, for the ``ServiceSpec``."""
        return {event_type.value: self.on_input for event_type in ARCHIVED_TYPES}

    async def on_input(self, event: CloudEvent, tx: Transaction) -> None:
        """Keep ``event`` with the time it was received."""
        if await archive_event(tx.connection, event, tx.now()):
            tx.after_commit(self.metrics.events_archived.labels(event.type).inc)
