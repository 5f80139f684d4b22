"""Topics at start-up, on a real broker: what is missing is created with the configured partition
count (the unit of parallelism), and topics that exist are left exactly as they are."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from leadrelay.runtime.topics import ensure_topics

DEADLINE = 30.0


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await client.start()
    yield client
    await client.close()


async def partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Each topic's partition count, once the broker's metadata knows every one of them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        described = await admin.describe_topics(names)
        if all(topic["error_code"] == 0 for topic in described) or loop.time() > deadline:
            return {topic["topic"]: len(topic["partitions"]) for topic in described}
        await asyncio.sleep(0.2)


async def test_missing_topics_are_created_with_the_configured_partitions(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient, unique_topic_prefix: str
) -> None:
    names = [f"{unique_topic_prefix}web-activity", f"{unique_topic_prefix}assignments"]
    created = await ensure_topics(kafka_bootstrap, names, partitions=4)
    assert created == sorted(names)
    assert await partition_counts(admin, names) == {name: 4 for name in names}


async def test_existing_topics_are_left_alone(
    kafka_bootstrap: str, admin: AIOKafkaAdminClient, unique_topic_prefix: str
) -> None:
    existing, missing = f"{unique_topic_prefix}existing", f"{unique_topic_prefix}missing"
    await admin.create_topics([NewTopic(existing, num_partitions=2, replication_factor=1)])
    await partition_counts(admin, [existing])  # the broker knows it before we look
    assert await ensure_topics(kafka_bootstrap, [existing, missing], partitions=6) == [missing]
    assert await ensure_topics(kafka_bootstrap, [existing, missing], partitions=6) == []
    assert await partition_counts(admin, [existing, missing]) == {existing: 2, missing: 6}
