"""Expiry of parked sales activity whose assignment never came.

Activity is parked when it names an assignment the monitor has no clocks for yet (see
``handlers.SlaHandlers.on_sales_activity``). Usually the assignment follows within seconds or, after
monitor downtime, within hours. Activity still waiting after ``PARKED_ACTIVITY_KEPT`` is about a
lead LeadRelay never assigned (a CRM reports on every lead it holds), so it is deleted, counted
and logged rather than kept forever.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from leadrelay.runtime.periodic import repeat
from leadrelay.store.sweep import delete_in_batches
from leadrelay.store.unit_of_work import Store, Transaction
from services.sla_monitor.metrics import SlaMetrics
from services.sla_monitor.repository import expire_parked

log = logging.getLogger(__name__)

PARKED_ACTIVITY_KEPT = timedelta(days=7)
EXPIRY_BATCH = 1000


@dataclass(frozen=True)
class ParkedActivityExpiry:
    """Deletes activity parked longer than ``kept``, every ``every_seconds``."""

    store: Store
    metrics: SlaMetrics
    every_seconds: float
    kept: timedelta = PARKED_ACTIVITY_KEPT
    batch: int = EXPIRY_BATCH

    async def run(self, stop: asyncio.Event) -> None:
        await repeat(
            stop, lambda: self.expire(stop), every=self.every_seconds, name="parked activity expiry"
        )

    async def expire(self, stop: asyncio.Event | None = None) -> int:
        """Delete what waited longer than ``kept``, a batch per transaction; how many."""

        async def expire_batch(tx: Transaction) -> int:
            return await expire_parked(tx.connection, tx.now() - self.kept, self.batch)

        total = await delete_in_batches(
            self.store,
            expire_batch,
            batch_size=self.batch,
            on_deleted=self.metrics.parked_activity.labels("expired").inc,
            stop=stop,
        )
        if total:
            log.warning(
                "expired %d sales activities parked over %s: no assignment of theirs arrived",
                total,
                self.kept,
            )
        return total
