"""The retention sweep: deletes visitors who never identified once idle for the retention.

Leads forget old activity as they are scored (``remembered`` in the domain), but a visitor who
never fills a form is never scored again, so only a sweep can let go of what it did. The sweep
deletes in small transactions so that it never holds up the consume loop for long.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from leadrelay.runtime.periodic import repeat
from leadrelay.store.sweep import delete_in_batches
from leadrelay.store.unit_of_work import Store, Transaction
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import forget_idle_visitors

log = logging.getLogger(__name__)

SWEEP_BATCH = 1000


@dataclass(frozen=True)
class VisitorRetention:
    """Forgets visitors idle for ``retention``, every ``every_seconds``."""

    store: Store
    retention: timedelta
    metrics: ScoringMetrics
    every_seconds: float
    batch: int = SWEEP_BATCH

    async def run(self, stop: asyncio.Event) -> None:
        await repeat(
            stop, lambda: self.sweep(stop), every=self.every_seconds, name="visitor retention sweep"
        )

    async def sweep(self, stop: asyncio.Event | None = None) -> int:
        """Delete every idle unidentified visitor, a batch per transaction; how many."""

        async def forget_batch(tx: Transaction) -> int:
            idle_since = tx.now() - self.retention
            return await forget_idle_visitors(tx.connection, idle_since, self.batch)

        total = await delete_in_batches(
            self.store,
            forget_batch,
            batch_size=self.batch,
            on_deleted=self.metrics.visitors_forgotten.inc,
            stop=stop,
        )
        if total:
            log.info("forgot %d visitors idle for %s", total, self.retention)
        return total
