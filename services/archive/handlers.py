"""One batch handler for every archived event type: keep the events as they arrived.

The consume loop has deduplicated the events and opened the transaction, so the rows commit
with the inbox rows or not at all; a repeated id (an inbox lost in a restore) is kept once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.topics import EventType
from leadrelay.runtime.consumer import EventHandlers
from leadrelay.store.unit_of_work import Transaction
from services.archive.metrics import ArchiveMetrics
from services.archive.repository import archive_events

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

    def handlers(self) -> EventHandlers:
        """What the ``ServiceSpec`` consumes: the archived types, a batch at a time."""
        return EventHandlers(frozenset(t.value for t in ARCHIVED_TYPES), self.apply)

    async def apply(self, events: Sequence[CloudEvent], tx: Transaction) -> None:
        """Keep ``events`` with the time they were received, in one statement."""
        kept = Counter(
            event.type for event in await archive_events(tx.connection, events, tx.now())
        )
        tx.after_commit(lambda: self._count(kept))

    def _count(self, kept: Counter[str]) -> None:
        for event_type, count in kept.items():
            self.metrics.events_archived.labels(event_type).inc(count)
