"""The retention sweep: deletes archived events once older than ``archive_retention``.

Like scoring's visitor sweep it deletes in small transactions (``delete_in_batches``), so a
first sweep over a large backlog never holds up the consume loops sharing the database.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from leadrelay.runtime.periodic import repeat
from leadrelay.store.sweep import delete_in_batches
from leadrelay.store.unit_of_work import Store, Transaction
from services.archive.metrics import ArchiveMetrics
from services.archive.repository import forget_received_before

log = logging.getLogger(__name__)

SWEEP_BATCH = 1000


@dataclass(frozen=True)
class ArchiveRetention:
    """Forgets events received more than ``retention`` ago, every ``every_seconds``."""

    store: Store
    retention: timedelta
    metrics: ArchiveMetrics
    every_seconds: float
    batch: int = SWEEP_BATCH

    async def run(self, stop: asyncio.Event) -> None:
        await repeat(
            stop, lambda: self.sweep(stop), every=self.every_seconds, name="archive retention sweep"
        )

    async def sweep(self, stop: asyncio.Event | None = None) -> int:
        """Delete every event older than the retention, a batch per transaction; how many."""

        async def forget_batch(tx: Transaction) -> int:
            return await forget_received_before(
                tx.connection, tx.now() - self.retention, self.batch
            )

        total = await delete_in_batches(
            self.store,
            forget_batch,
            batch_size=self.batch,
            on_deleted=self.metrics.events_forgotten.inc,
            stop=stop,
        )
        if total:
            log.info("forgot %d archived events older than %s", total, self.retention)
        return total
