"""Deleting what is no longer needed without holding up the services that share the database.

A retention sweep may find a large backlog (the first run after an upgrade, or after downtime).
Deleting it in one transaction would hold locks, and on SQLite the one writer slot, for as long
as that takes; small transactions let the consume loop's own transactions in between.

:class:`AgeSweep` is the one periodic "delete what is older than X" job: the runtime's inbox and
sent-outbox retention, scoring's idle visitors, the SLA monitor's parked activity and the
archive's old events are each an ``AgeSweep`` configured with their own delete statement.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.runtime.periodic import repeat
from leadrelay.store.unit_of_work import Store, Transaction

log = logging.getLogger(__name__)

DeleteOld = Callable[[AsyncConnection, datetime, int], Awaitable[int]]
"""Deletes up to ``limit`` rows older than the cutoff on the transaction's connection; how many."""
SWEEP_BATCH = 1000


async def delete_in_batches(
    store: Store,
    delete_batch: Callable[[Transaction], Awaitable[int]],
    *,
    batch_size: int,
    on_deleted: Callable[[int], None],
    stop: asyncio.Event | None = None,
) -> int:
    """Run ``delete_batch`` (at most ``batch_size`` rows) until a batch falls short; how many.

    ``on_deleted`` hears each committed batch's count, so progress shows in metrics at once.
    Setting ``stop`` ends the sweep after the batch in progress: a first sweep over a large
    backlog must not outlast the shutdown grace period (the rest waits for the next sweep).
    """
    total = 0
    while stop is None or not stop.is_set():
        async with store.transaction() as tx:
            deleted = await delete_batch(tx)
        on_deleted(deleted)
        total += deleted
        if deleted < batch_size:
            break
    return total


@dataclass(frozen=True)
class AgeSweep:
    """Every ``every_seconds``, deletes what ``delete_old`` finds older than ``max_age``.

    The cutoff is taken from the store's clock per batch; each committed batch's count goes to
    ``on_deleted`` (a metric), and a sweep that deleted anything logs one line at ``log_level``
    naming ``what`` it deleted.
    """

    store: Store
    name: str
    """What the job is called in logs, e.g. ``visitor retention sweep``."""
    what: str
    """What a deleted row is, for the log line, e.g. ``idle visitors``."""
    delete_old: DeleteOld
    max_age: timedelta
    on_deleted: Callable[[int], None]
    every_seconds: float
    batch: int = SWEEP_BATCH
    log_level: int = logging.INFO

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep now and then every ``every_seconds`` until ``stop``."""
        await repeat(stop, lambda: self.sweep(stop), every=self.every_seconds, name=self.name)

    async def sweep(self, stop: asyncio.Event | None = None) -> int:
        """Delete everything older than ``max_age``, a batch per transaction; how many."""

        async def batch(tx: Transaction) -> int:
            return await self.delete_old(tx.connection, tx.now() - self.max_age, self.batch)

        total = await delete_in_batches(
            self.store, batch, batch_size=self.batch, on_deleted=self.on_deleted, stop=stop
        )
        if total:
            log.log(
                self.log_level,
                "%s: deleted %d %s older than %s",
                self.name,
                total,
                self.what,
                self.max_age,
            )
        return total
