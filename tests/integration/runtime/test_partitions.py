"""Partitions of one process progress concurrently, each in order, on real Kafka and PostgreSQL.

PostgreSQL only: SQLite allows one writer at a time, so there a handler stuck inside its
transaction holds up every partition by design.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import insert, select

from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.runtime.producer import EventProducer
from leadrelay.runtime.topics import ensure_topics
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store, Transaction
from tests.harness.postgres import scratch_database
from tests.integration.runtime.effects import (
    Topics,
    consumer_loop,
    create_effects_table,
    effect_counts,
    effects,
    sales_activity,
    wait_until,
)


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[Store]:
    async with scratch_database(postgres_url) as url:
        await upgrade_async(url)
        engine = create_engine_for(url)
        await create_effects_table(engine)
        yield Store(engine)
        await engine.dispose()


async def test_a_stuck_partition_does_not_hold_up_the_others_which_stay_in_order(
    kafka_bootstrap: str, unique_topic_prefix: str, pg_store: Store
) -> None:
    topics = Topics(unique_topic_prefix)
    await ensure_topics(kafka_bootstrap, topics.all, partitions=2)
    stuck, flowing = sales_activity(0), [sales_activity(n) for n in range(1, 21)]
    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await raw.start()
    await raw.send_and_wait(topics.input, stuck.to_bytes(), partition=0)
    for event in flowing:
        await raw.send_and_wait(topics.input, event.to_bytes(), partition=1)
    await raw.stop()
    release = asyncio.Event()

    async def handler(event: CloudEvent, tx: Transaction) -> None:
        if event.id == stuck.id:
            await release.wait()
        await tx.connection.execute(insert(effects).values(event_id=event.id, consumer="c1"))

    producer = EventProducer(kafka_bootstrap)
    await producer.start()
    stop = asyncio.Event()
    loop = await consumer_loop(kafka_bootstrap, pg_store, producer, topics, "c1", handler)
    task = asyncio.create_task(loop.run(stop))
    try:

        async def applied(*events: CloudEvent) -> bool:
            counts = await effect_counts(pg_store.engine)
            return all(counts.get(e.id) == 1 for e in events)

        await wait_until(lambda: applied(*flowing))  # while partition 0 is stuck
        assert not await applied(stuck)
        release.set()
        await wait_until(lambda: applied(stuck))
    finally:
        release.set()
        stop.set()
        await task
        await producer.stop()
    async with pg_store.read() as connection:
        rows = await connection.execute(select(effects.c.event_id).order_by(effects.c.id))
        order = [event_id for (event_id,) in rows if event_id != stuck.id]
    assert order == [e.id for e in flowing]  # partition 1's events in their partition order
