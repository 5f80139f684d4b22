"""Bounded runtime state: inbox and sent-outbox rows are deleted once they are old enough.

An inbox row exists to recognise a redelivery, so it must outlive any copy of its event that
Kafka can still hand out: the retention (``LEADRELAY_STATE_RETENTION_DAYS``, 7 days by default)
must be longer than the retention of every topic a service consumes. A sent outbox row is only
history once published. Unsent rows are never deleted, however old. Deletes run in batches
(:func:`~leadrelay.store.sweep.delete_in_batches`) so a large backlog never holds the writer for
long, and every deleted row is counted in ``leadrelay_retention_deleted_total{table}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_

from leadrelay.metrics import RuntimeMetrics
from leadrelay.runtime.periodic import repeat
from leadrelay.store.sweep import delete_in_batches
from leadrelay.store.tables import inbox, outbox
from leadrelay.store.unit_of_work import Store, Transaction

log = logging.getLogger(__name__)

DeleteOld = Callable[[Transaction, datetime, int], Awaitable[int]]
"""Deletes up to ``limit`` rows older than the cutoff in the transaction; how many."""
DEFAULT_RETENTION = timedelta(days=7)
SWEEP_BATCH = 1000


async def delete_old_inbox(tx: Transaction, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` inbox rows processed before ``before``; how many."""
    old = (
        select(inbox.c.consumer, inbox.c.event_id).where(inbox.c.processed_at < before).limit(limit)
    )
    result = await tx.connection.execute(
        delete(inbox).where(tuple_(inbox.c.consumer, inbox.c.event_id).in_(old))
    )
    return int(result.rowcount)


async def delete_old_sent_outbox(tx: Transaction, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` outbox rows sent before ``before`` (never an unsent one)."""
    old = select(outbox.c.id).where(outbox.c.sent_at < before).limit(limit)
    result = await tx.connection.execute(delete(outbox).where(outbox.c.id.in_(old)))
    return int(result.rowcount)


@dataclass(frozen=True)
class StateRetention:
    """Deletes inbox and sent-outbox rows older than ``retention``, every ``every_seconds``."""

    store: Store
    metrics: RuntimeMetrics
    retention: timedelta = DEFAULT_RETENTION
    every_seconds: float = 3600.0
    batch: int = SWEEP_BATCH

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep now and then every ``every_seconds`` until ``stop``."""
        await repeat(
            stop, lambda: self.sweep(stop), every=self.every_seconds, name="state retention"
        )

    async def sweep(self, stop: asyncio.Event | None = None) -> dict[str, int]:
        """One sweep of both tables, a batch per transaction; how many rows each lost."""
        deleted = {
            "inbox": await self._sweep("inbox", delete_old_inbox, stop),
            "outbox": await self._sweep("outbox", delete_old_sent_outbox, stop),
        }
        if any(deleted.values()):
            log.info("deleted state older than %s: %s", self.retention, deleted)
        return deleted

    async def _sweep(self, table: str, delete_old: DeleteOld, stop: asyncio.Event | None) -> int:
        async def batch(tx: Transaction) -> int:
            return await delete_old(tx, tx.now() - self.retention, self.batch)

        return await delete_in_batches(
            self.store,
            batch,
            batch_size=self.batch,
            on_deleted=self.metrics.retention_deleted.labels(table).inc,
            stop=stop,
        )
