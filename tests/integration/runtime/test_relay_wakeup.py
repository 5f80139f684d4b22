"""The outbox relay publishes on commit, not on its timer, and several relays keep key order.

Every relay here runs with a 60 s safety poll and every deadline is far shorter, so an event that
arrives in time was published because a commit woke the relay: in-process, or by PostgreSQL
``NOTIFY`` from another engine (another process's connection pool, as far as the server knows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest

from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.runtime.producer import EventProducer
from leadrelay.store.engine import create_engine_for
from leadrelay.store.outbox_relay import OutboxRelay, RawPublisher
from leadrelay.store.tables import relay_bucket
from leadrelay.store.unit_of_work import Store
from tests.harness.postgres import scratch_database
from tests.integration.runtime.effects import Message, Topics, read_topic

SAFETY_POLL = 60.0
WITHIN = 20.0  # well under the safety poll: only a wake-up can make it


def recycled(key: str, n: int) -> CloudEvent:
    return new_event(
        "leadrelay.lead_recycled.v1",
        source="tests",
        id=f"{key}-{n}",
        subject=key,
        data={
            "lead_key": key,
            "reason": "manual",
            "recycled_at": datetime(2026, 12, 1, tzinfo=UTC),
        },
    )


async def commit(store: Store, topic: str, event: CloudEvent) -> None:
    async with store.transaction() as tx:
        await tx.publish(topic, event)


def ids(messages: Sequence[Message]) -> list[str]:
    return [json.loads(value)["id"] for _, value, _ in messages]


def first_copies_per_key(messages: Sequence[Message]) -> dict[str, list[str]]:
    """Each key's event ids in the order a consumer applies them (a repeated copy is skipped)."""
    order: dict[str, list[str]] = {}
    for event_id in ids(messages):
        key, _ = event_id.rsplit("-", 1)
        if event_id not in order.setdefault(key, []):
            order[key].append(event_id)
    return order


@contextlib.asynccontextmanager
async def relay_running(relay: OutboxRelay) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.ensure_future(relay.run(stop, poll_seconds=SAFETY_POLL))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[EventProducer]:
    started = EventProducer(kafka_bootstrap)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def postgres_migrated(postgres_url: str) -> AsyncIterator[str]:
    async with scratch_database(postgres_url) as url:
        await upgrade_async(url)
        yield url


async def stores(url: str, count: int) -> list[Store]:
    return [Store(create_engine_for(url)) for _ in range(count)]


async def test_a_commit_wakes_the_relay_in_its_process(
    migrated_url: str, producer: EventProducer, topics: Topics, kafka_bootstrap: str
) -> None:
    topic = topics.output
    (store,) = await stores(migrated_url, 1)
    try:
        async with relay_running(OutboxRelay(store, producer)):
            await commit(store, topic, recycled("lk_a", 0))
            first = await read_topic(kafka_bootstrap, topic, expected=1, within=WITHIN)
            # the relay is idle now, its next poll a minute away: only the commit can wake it
            await commit(store, topic, recycled("lk_a", 1))
            both = await read_topic(kafka_bootstrap, topic, expected=2, within=WITHIN)
    finally:
        await store.dispose()
    assert ids(first) == ["lk_a-0"]
    assert ids(both) == ["lk_a-0", "lk_a-1"]


async def test_a_notify_from_another_engine_wakes_the_relay(
    postgres_migrated: str, producer: EventProducer, topics: Topics, kafka_bootstrap: str
) -> None:
    topic = topics.output
    relay_store, writer = await stores(postgres_migrated, 2)
    relay = OutboxRelay(relay_store, producer)
    try:
        async with relay_running(relay):
            await asyncio.wait_for(relay.listening.wait(), timeout=WITHIN)
            await commit(writer, topic, recycled("lk_b", 0))  # no in-process signal reaches it
            first = await read_topic(kafka_bootstrap, topic, expected=1, within=WITHIN)
            await commit(writer, topic, recycled("lk_b", 1))
            both = await read_topic(kafka_bootstrap, topic, expected=2, within=WITHIN)
    finally:
        await relay_store.dispose()
        await writer.dispose()
    assert ids(first) == ["lk_b-0"]
    assert ids(both) == ["lk_b-0", "lk_b-1"]


class HeldOnce:
    """Passes sends to ``publisher``, but holds the first one until ``release`` is set."""

    def __init__(self, publisher: RawPublisher) -> None:
        self.publisher = publisher
        self.holding, self.release = asyncio.Event(), asyncio.Event()

    async def send_batch(
        self, messages: Sequence[tuple[str, str | None, bytes]]
    ) -> list[BaseException | None]:
        if not self.holding.is_set():
            self.holding.set()
            await self.release.wait()
        return await self.publisher.send_batch(messages)


async def test_a_relay_stuck_on_one_key_holds_up_no_other_key_and_keeps_its_order(
    postgres_migrated: str, producer: EventProducer, topics: Topics, kafka_bootstrap: str
) -> None:
    topic = topics.output
    stuck_key, free_key = "lk_stuck", "lk_free"
    assert relay_bucket(stuck_key, "") != relay_bucket(free_key, "")
    first_store, second_store = await stores(postgres_migrated, 2)
    held = HeldOnce(producer)
    first, second = OutboxRelay(first_store, held), OutboxRelay(second_store, producer)
    try:
        async with relay_running(first):
            await commit(first_store, topic, recycled(stuck_key, 0))
            await asyncio.wait_for(held.holding.wait(), timeout=WITHIN)  # first holds its bucket
            async with relay_running(second):
                await commit(second_store, topic, recycled(stuck_key, 1))
                await commit(second_store, topic, recycled(free_key, 0))
                meanwhile = await read_topic(kafka_bootstrap, topic, expected=1, within=WITHIN)
                held.release.set()
                everything = await read_topic(kafka_bootstrap, topic, expected=3, within=WITHIN)
    finally:
        held.release.set()
        await first_store.dispose()
        await second_store.dispose()
    assert ids(meanwhile) == ["lk_free-0"]  # the second relay went on; the stuck key waited
    assert first_copies_per_key(everything) == {
        stuck_key: ["lk_stuck-0", "lk_stuck-1"],
        free_key: ["lk_free-0"],
    }


async def test_two_relays_publishing_at_once_keep_every_keys_order(
    postgres_migrated: str, producer: EventProducer, topics: Topics, kafka_bootstrap: str
) -> None:
    topic = topics.output
    relay_stores = await stores(postgres_migrated, 2)
    keys = [f"lk_{n:02d}" for n in range(12)]
    per_key = 15
    shuffle = random.Random(13)

    async def write(key: str) -> None:
        for n in range(per_key):  # one key's events commit one after another, as a partition's
            await commit(shuffle.choice(relay_stores), topic, recycled(key, n))

    try:
        relays = [OutboxRelay(store, producer, batch_size=20) for store in relay_stores]
        async with relay_running(relays[0]), relay_running(relays[1]):
            await asyncio.gather(*(write(key) for key in keys))
            messages = await read_topic(
                kafka_bootstrap,
                topic,
                expected=len(keys) * per_key,
                within=WITHIN * 3,
                until=lambda seen: len(set(ids(seen))) == len(keys) * per_key,
            )
    finally:
        for store in relay_stores:
            await store.dispose()
    assert first_copies_per_key(messages) == {
        key: [f"{key}-{n}" for n in range(per_key)] for key in keys
    }
