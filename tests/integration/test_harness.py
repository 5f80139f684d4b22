"""The test infrastructure itself: a real broker that survives a restart, and real databases.

If these fail, every integration test built on the fixtures would fail for the wrong reason.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.harness.kafka_broker import KafkaBroker, metadata_ready

PARTITIONS = 3


async def create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Send each value to partition ``index % PARTITIONS`` and wait for acks=all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for index, value in enumerate(values):
            await producer.send_and_wait(topic, value, partition=index % PARTITIONS)
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    """Read the topic from the beginning until ``expected`` messages arrived (or time out)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    received: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < expected:
                batches = await consumer.getmany(timeout_ms=500)
                received.extend(msg.value for batch in batches.values() for msg in batch)
    finally:
        await consumer.stop()
    return received


async def test_broker_stores_acked_messages_on_every_partition(
    kafka_bootstrap: str, unique_topic_prefix: str
) -> None:
    topic = f"{unique_topic_prefix}round-trip"
    await create_topic(kafka_bootstrap, topic)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        assert await producer.partitions_for(topic) == set(range(PARTITIONS))
    finally:
        await producer.stop()

    sent = [f"message-{n}".encode() for n in range(6)]
    await produce(kafka_bootstrap, topic, sent)

    assert sorted(await consume_all(kafka_bootstrap, topic, len(sent))) == sorted(sent)


@pytest.mark.slow  # restarts the broker: a JVM start, tens of CPU-seconds
async def test_broker_restarts_on_same_port_and_keeps_its_data(
    kafka_broker: KafkaBroker, unique_topic_prefix: str
) -> None:
    topic = f"{unique_topic_prefix}outage"
    bootstrap = kafka_broker.bootstrap
    await create_topic(bootstrap, topic)
    await produce(bootstrap, topic, [b"before"])

    await asyncio.to_thread(kafka_broker.stop)
    assert not metadata_ready("127.0.0.1", kafka_broker.port)
    outage_client = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    with pytest.raises(KafkaConnectionError):
        await outage_client.start()
    await outage_client.stop()

    await asyncio.to_thread(kafka_broker.start)
    assert kafka_broker.bootstrap == bootstrap
    await produce(bootstrap, topic, [b"after"])

    assert sorted(await consume_all(bootstrap, topic, 2)) == [b"after", b"before"]


@pytest.mark.parametrize("attempt", [1, 2])
async def test_database_url_is_a_fresh_working_database(
    database_url: str, attempt: int, request: pytest.FixtureRequest
) -> None:
    """Two runs per backend each find no tables, so one test's schema never leaks to the next."""
    backend = request.node.callspec.params["database_url"]
    engine = create_async_engine(database_url)
    assert engine.dialect.name == {"sqlite": "sqlite", "postgres": "postgresql"}[backend]
    try:
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
            assert await conn.run_sync(lambda sync: inspect(sync).get_table_names()) == []
            await conn.execute(text("CREATE TABLE probe (attempt INTEGER NOT NULL)"))
            await conn.execute(text("INSERT INTO probe VALUES (:attempt)"), {"attempt": attempt})
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT attempt FROM probe"))).scalar_one() == attempt
    finally:
        await engine.dispose()
