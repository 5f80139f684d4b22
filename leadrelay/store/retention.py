"""Bounded runtime state: inbox and sent-outbox rows are deleted once they are old enough.

An inbox row exists to recognise a redelivery, so it must outlive any copy of its event that
Kafka can still hand out: the retention (``LEADRELAY_STATE_RETENTION_DAYS``, 7 days by default)
must be longer than the retention of every topic a service consumes. A sent outbox row is only
history once published. Unsent rows are never deleted, however old. Deletes run in batches
(:func:`~leadrelay.store.sweep.delete_in_batches`) so a large backlog never holds the writer for
long, and every deleted row is counted in ``leadrelay_retention_deleted_total{table}``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.metrics import RuntimeMetrics
from leadrelay.store.sweep import SWEEP_BATCH, AgeSweep, DeleteOld
from leadrelay.store.tables import inbox, outbox
from leadrelay.store.unit_of_work import Store

DEFAULT_RETENTION = timedelta(days=7)


async def delete_old_inbox(connection: AsyncConnection, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` inbox rows processed before ``before``; how many."""
    old = (
        select(inbox.c.consumer, inbox.c.event_id).where(inbox.c.processed_at < before).limit(limit)
    )
    result = await connection.execute(
        delete(inbox).where(tuple_(inbox.c.consumer, inbox.c.event_id).in_(old))
    )
    return int(result.rowcount)


async def delete_old_sent_outbox(connection: AsyncConnection, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` outbox rows sent before ``before`` (never an unsent one)."""
    old = select(outbox.c.id).where(outbox.c.sent_at < before).limit(limit)
    result = await connection.execute(delete(outbox).where(outbox.c.id.in_(old)))
    return int(result.rowcount)


def state_retention(
    store: Store,
    metrics: RuntimeMetrics,
    *,
    retention: timedelta = DEFAULT_RETENTION,
    every_seconds: float = 3600.0,
    batch: int = SWEEP_BATCH,
) -> dict[str, AgeSweep]:
    """The inbox and the sent-outbox sweeps, by table: each deletes rows older than
    ``retention`` every ``every_seconds`` (run each one's ``run``)."""

    def sweep(table: str, what: str, delete_old: DeleteOld) -> AgeSweep:
        return AgeSweep(
            store,
            name=f"{table} retention",
            what=what,
            delete_old=delete_old,
            max_age=retention,
            on_deleted=metrics.retention_deleted.labels(table).inc,
            every_seconds=every_seconds,
            batch=batch,
        )

    return {
        "inbox": sweep("inbox", "processed event ids", delete_old_inbox),
        "outbox": sweep("outbox", "sent events", delete_old_sent_outbox),
    }
