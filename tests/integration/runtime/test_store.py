"""The state store on both backends: migrations, the inbox and the outbox relay."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay.app.schema import downgrade, upgrade, upgrade_async
from leadrelay.app.tables import metadata
from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.runtime.producer import EventProducer
from leadrelay.runtime.topics import ensure_topics
from leadrelay.store.engine import create_engine_for
from leadrelay.store.outbox_relay import OutboxRelay
from leadrelay.store.unit_of_work import Store
from tests.integration.runtime.effects import read_topic


def _recycled(event_id: str) -> CloudEvent:
    return new_event(
        "leadrelay.lead_recycled.v1",
        source="tests",
        id=event_id,
        subject="lk_1",
        data={
            "lead_key": "lk_1",
            "reason": "manual",
            "recycled_at": datetime(2026, 11, 24, tzinfo=UTC),
        },
    )


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda c: inspect(c).get_table_names())
    return set(names) - {"alembic_version"}


async def _columns(engine: AsyncEngine) -> dict[str, set[str]]:
    def read(connection):  # type: ignore[no-untyped-def]
        inspector = inspect(connection)
        return {
            t: {c["name"] for c in inspector.get_columns(t)}
            for t in inspector.get_table_names()
            if t != "alembic_version"
        }

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def test_migrations_upgrade_an_empty_database_and_downgrade_cleanly(
    database_url: str,
) -> None:
    engine = create_engine_for(database_url)
    try:
        assert await _tables(engine) == set()
        await asyncio.to_thread(upgrade, database_url)
        assert await _tables(engine) == set(metadata.tables)
        await asyncio.to_thread(downgrade, database_url)
        assert await _tables(engine) == set()
        await asyncio.to_thread(upgrade, database_url)  # and up again, from base
        assert await _tables(engine) == set(metadata.tables)
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_the_table_declarations(database_url: str) -> None:
    await upgrade_async(database_url)
    engine = create_engine_for(database_url)
    try:
        declared = {
            name: {c.name for c in table.columns} for name, table in metadata.tables.items()
        }
        assert await _columns(engine) == declared
    finally:
        await engine.dispose()


async def test_inbox_recognises_an_event_already_processed(database_url: str) -> None:
    await upgrade_async(database_url)
    store = Store(create_engine_for(database_url))
    try:
        async with store.transaction() as tx:
            assert await tx.mark_all_processed("scoring", ["evt-1"]) == {"evt-1"}
            assert await tx.mark_all_processed("handoff", ["evt-1"]) == {"evt-1"}  # per consumer
        async with store.transaction() as tx:
            assert await tx.mark_all_processed("scoring", ["evt-1"]) == frozenset()
    finally:
        await store.dispose()


async def test_inbox_records_a_batch_in_one_statement_and_names_the_new_ids(
    database_url: str,
) -> None:
    await upgrade_async(database_url)
    store = Store(create_engine_for(database_url))
    try:
        async with store.transaction() as tx:
            assert await tx.mark_all_processed("scoring", ["a", "b"]) == {"a", "b"}
        async with store.transaction() as tx:
            # b was seen before; c is given twice and recorded once
            assert await tx.mark_all_processed("scoring", ["b", "c", "c", "d"]) == {"c", "d"}
            assert await tx.mark_all_processed("scoring", []) == set()
        async with store.transaction() as tx:
            assert await tx.mark_all_processed("scoring", ["a", "c", "d"]) == set()
    finally:
        await store.dispose()


async def test_batch_inserts_reuse_one_compiled_statement_however_many_batches(
    database_url: str,
) -> None:
    """A statement compiled anew per batch costs CPU on every batch and floods the engine's
    compiled cache, evicting every other statement: the inbox and outbox inserts of twenty
    batches of different ids and sizes must run from the same compiled statements."""
    await upgrade_async(database_url)
    store = Store(create_engine_for(database_url))
    compiled: dict[str, set[int]] = {"inbox": set(), "outbox": set()}

    def record(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        for table in compiled:
            if statement.startswith(f"INSERT INTO {table} "):
                compiled[table].add(id(context.compiled))

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        for batch in range(20):
            ids = [f"evt-{batch}-{n}" for n in range(1 + batch % 4)]
            async with store.transaction() as tx:
                assert await tx.mark_all_processed("scoring", ids) == set(ids)
                for id_ in ids:
                    await tx.publish("leadrelay.recycled", _recycled(id_))
        # one compiled form for a single row and one for several (SQLAlchemy's executemany)
        assert {table: len(seen) for table, seen in compiled.items()} == {"inbox": 2, "outbox": 2}
    finally:
        await store.dispose()


async def test_outbox_rows_of_a_rolled_back_transaction_are_never_published(
    database_url: str, kafka_bootstrap: str, unique_topic_prefix: str
) -> None:
    topic = f"{unique_topic_prefix}recycled"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    await upgrade_async(database_url)
    store = Store(create_engine_for(database_url))
    producer = EventProducer(kafka_bootstrap)
    await producer.start()

    try:
        async with store.transaction() as tx:
            await tx.publish(topic, _recycled("r-1"))
        try:
            async with store.transaction() as tx:
                await tx.publish(topic, _recycled("r-2"))
                raise RuntimeError("the handler failed after queuing")
        except RuntimeError:
            pass
        async with store.transaction() as tx:
            await tx.publish(topic, _recycled("r-3"))
        assert await store.outbox_backlog() == 2
        relay = OutboxRelay(store, producer)
        assert await relay.publish_pending() == 2
        assert await relay.publish_pending() == 0
        assert await store.outbox_backlog() == 0
    finally:
        await producer.stop()
        await store.dispose()
    messages = await read_topic(kafka_bootstrap, topic, expected=2)
    assert [key for key, _, _ in messages] == [b"lk_1", b"lk_1"]
    assert [json.loads(value)["id"] for _, value, _ in messages] == ["r-1", "r-3"]


async def test_after_commit_actions_run_only_for_a_committed_transaction(
    database_url: str,
) -> None:
    await upgrade_async(database_url)
    store = Store(create_engine_for(database_url))
    counted: list[str] = []
    try:
        async with store.transaction() as tx:
            tx.after_commit(lambda: counted.append("committed"))
            assert counted == []  # not before the commit
        try:
            async with store.transaction() as tx:
                tx.after_commit(lambda: counted.append("rolled back"))
                raise RuntimeError("the handler failed")
        except RuntimeError:
            pass
    finally:
        await store.dispose()
    assert counted == ["committed"]
