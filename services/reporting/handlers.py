"""One batch handler for every consumed event type: turn each event into its fact and keep them.

The consume loop has deduplicated the events and opened the transaction, so the facts commit
with the inbox rows or not at all; a fact's id is its event's (the assignment's for an
assignment), so even a replay without the inbox stores nothing twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.runtime.consumer import EventHandlers
from leadrelay.store.unit_of_work import Transaction
from services.reporting.messages import CONVERTERS, fact_of
from services.reporting.metrics import ReportingMetrics
from services.reporting.repository import save_facts


@dataclass(frozen=True)
class ReportingHandlers:
    metrics: ReportingMetrics

    def handlers(self) -> EventHandlers:
        """What the ``ServiceSpec`` consumes: every type with a converter, a batch at a time."""
        return EventHandlers(frozenset(CONVERTERS), self.apply)

    async def apply(self, events: Sequence[CloudEvent], tx: Transaction) -> None:
        """Keep the facts the events state, in one statement (a reassignment naming no
        assignment states none)."""
        stated = [(event.type, fact) for event in events if (fact := fact_of(event)) is not None]
        await save_facts(tx.connection, [fact for _type, fact in stated])
        by_type = Counter(event_type for event_type, _fact in stated)
        tx.after_commit(lambda: self._count(by_type))

    def _count(self, by_type: Counter[str]) -> None:
        for event_type, count in by_type.items():
            self.metrics.facts.labels(event_type).inc(count)
