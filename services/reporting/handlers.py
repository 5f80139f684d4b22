"""One handler for every consumed event type: turn the event into its fact and keep it.

The consume loop has deduplicated the event and opened the transaction, so the fact commits with
the inbox row or not at all; the fact's id is the event's (the assignment's for an assignment),
so even a replay without the inbox stores nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.runtime.consumer import Handler
from leadrelay.store.unit_of_work import Transaction
from services.reporting.messages import CONVERTERS, fact_of
from services.reporting.metrics import ReportingMetrics
from services.reporting.repository import save_facts


@dataclass(frozen=True)
class ReportingHandlers:
    metrics: ReportingMetrics

    def table(self) -> Mapping[str, Handler]:
        """Event type -> handler, for the ``ServiceSpec``."""
        return dict.fromkeys(CONVERTERS, self.on_event)

    async def on_event(self, event: CloudEvent, tx: Transaction) -> None:
        """Keep the fact the event states (a reassignment naming no assignment states none)."""
        fact = fact_of(event)
        if fact is not None:
            await save_facts(tx.connection, [fact])
        tx.after_commit(self.metrics.facts.labels(event.type).inc)
