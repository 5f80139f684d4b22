"""Bounded state: inbox and sent-outbox rows go once older than the retention, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import insert, select

from leadrelay.metrics import RuntimeMetrics
from leadrelay.store.engine import create_engine_for
from leadrelay.store.retention import state_retention
from leadrelay.store.tables import inbox, outbox
from leadrelay.store.unit_of_work import Store

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
RETENTION = timedelta(days=7)
OLD = NOW - RETENTION - timedelta(minutes=1)
RECENT = NOW - RETENTION + timedelta(minutes=1)


async def test_retention_deletes_only_what_is_old_enough(migrated_url: str) -> None:
    store = Store(create_engine_for(migrated_url), clock=lambda: NOW)
    async with store.transaction() as tx:
        await tx.connection.execute(
            insert(inbox),
            [{"consumer": "scoring", "event_id": f"old-{n}", "processed_at": OLD} for n in range(5)]
            + [{"consumer": "scoring", "event_id": "recent", "processed_at": RECENT}],
        )
        row = {"topic": "t", "message_key": "k", "payload": b"x", "created_at": OLD}
        await tx.connection.execute(
            insert(outbox),
            [{**row, "event_id": f"sent-old-{n}", "sent_at": OLD} for n in range(5)]
            + [
                {**row, "event_id": "sent-recent", "sent_at": RECENT},
                {**row, "event_id": "unsent-old", "sent_at": None},  # never deleted: unsent
            ],
        )
    registry = CollectorRegistry()
    sweeps = state_retention(store, RuntimeMetrics.create(registry), retention=RETENTION, batch=2)
    try:
        deleted = {table: await sweep.sweep() for table, sweep in sweeps.items()}
        async with store.read() as connection:
            kept_inbox = set((await connection.execute(select(inbox.c.event_id))).scalars())
            kept_outbox = set((await connection.execute(select(outbox.c.event_id))).scalars())
        again = {table: await sweep.sweep() for table, sweep in sweeps.items()}
    finally:
        await store.dispose()
    assert deleted == {"inbox": 5, "outbox": 5}  # in batches of two: 2 + 2 + 1 each
    assert kept_inbox == {"recent"}
    assert kept_outbox == {"sent-recent", "unsent-old"}
    assert again == {"inbox": 0, "outbox": 0}
    for table in ("inbox", "outbox"):
        labels = {"table": table}
        assert registry.get_sample_value("leadrelay_retention_deleted_total", labels) == 5
