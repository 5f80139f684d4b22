"""Exactly-once effects on an at-least-once transport, on real Kafka, SQLite and PostgreSQL.

Counted by event id, as the design promises: the relay may publish a copy of an event again
(it crashed, or the machine was slow, after sending and before marking the row sent), and that
copy carries the same id, so every consumer's inbox skips it. What must never happen is an
effect applied twice, or one fact published under two different ids (which no inbox could
recognise). So effects are counted per input id (exactly one each), and what was published is
compared as a set of ids (each expected id present, no other id).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.runtime.producer import EventProducer
from leadrelay.store.engine import create_engine_for
from leadrelay.store.outbox_relay import OutboxRelay
from leadrelay.store.unit_of_work import Store, Transaction
from tests.integration.runtime.crash_worker import CRASH_EXIT_CODE
from tests.integration.runtime.effects import (
    Topics,
    consumer_loop,
    create_effects_table,
    effect_counts,
    effects,
    make_handler,
    produce,
    read_topic,
    sales_activity,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[3]


def run_worker(
    bootstrap: str, database_url: str, topics: Topics, *, expect: int, crash: str | None = None
) -> int:
    command = [
        sys.executable,
        "-m",
        "tests.integration.runtime.crash_worker",
        "--bootstrap",
        bootstrap,
        "--database-url",
        database_url,
        "--topic",
        topics.input,
        "--out-topic",
        topics.output,
        "--dlq",
        topics.dlq,
        "--group",
        topics.group,
        "--expect",
        str(expect),
    ]
    if crash:
        command += ["--crash", crash]
    return subprocess.run(command, cwd=ROOT, timeout=180, check=False).returncode


async def published_ids(bootstrap: str, topic: str, expected: set[str]) -> set[str]:
    """The distinct event ids on ``topic``, read until every expected one arrived (or the
    deadline); copies of one id count once, any other id shows as an extra."""
    messages = await read_topic(
        bootstrap,
        topic,
        expected=len(expected),
        until=lambda got: expected <= set(ids_of(got)),
    )
    return set(ids_of(messages))


def ids_of(messages: list[tuple[bytes | None, bytes, dict[str, bytes]]]) -> Counter[str]:
    return Counter(json.loads(value)["id"] for _, value, _ in messages)


async def test_consumer_killed_after_db_commit_applies_each_event_once(
    kafka_bootstrap: str, migrated_url: str, topics: Topics
) -> None:
    events = [sales_activity(n, lead_count=10) for n in range(30)]
    # Copies republished with the same id, as a relay that died before marking them sent does.
    # Each sits before a later event of its own key (so its partition's), so the worker cannot
    # finish without having met it: the inbox must skip it.
    copies = events[:5]
    await produce(kafka_bootstrap, topics.input, [*events[:10], *copies, *events[10:]])

    crashed = await asyncio.to_thread(
        run_worker, kafka_bootstrap, migrated_url, topics, expect=30, crash="after-db-commit:3"
    )
    assert crashed == CRASH_EXIT_CODE
    engine = create_engine_for(migrated_url)
    applied_before_crash = sum((await effect_counts(engine)).values())
    assert 3 <= applied_before_crash < 30  # three transactions of up to four events committed

    finished = await asyncio.to_thread(run_worker, kafka_bootstrap, migrated_url, topics, expect=30)
    assert finished == 0
    counts = await effect_counts(engine)
    await engine.dispose()
    assert counts == {e.id: 1 for e in events}
    recycled = {f"{e.id}:recycled" for e in events}
    assert await published_ids(kafka_bootstrap, topics.output, recycled) == recycled


async def test_process_killed_before_outbox_publish_publishes_once_after_restart(
    kafka_bootstrap: str, migrated_url: str, topics: Topics
) -> None:
    events = [sales_activity(n) for n in range(20)]
    await produce(kafka_bootstrap, topics.input, events)

    crashed = await asyncio.to_thread(
        run_worker, kafka_bootstrap, migrated_url, topics, expect=20, crash="before-publish"
    )
    assert crashed == CRASH_EXIT_CODE
    engine = create_engine_for(migrated_url)
    assert await Store(engine).outbox_backlog() > 0  # committed, not yet published

    finished = await asyncio.to_thread(run_worker, kafka_bootstrap, migrated_url, topics, expect=20)
    assert finished == 0
    assert await effect_counts(engine) == {e.id: 1 for e in events}
    await engine.dispose()
    recycled = {f"{e.id}:recycled" for e in events}
    assert await published_ids(kafka_bootstrap, topics.output, recycled) == recycled


async def test_poison_message_is_dead_lettered_and_the_partition_keeps_moving(
    kafka_bootstrap: str, migrated_url: str, topics: Topics
) -> None:
    from aiokafka import AIOKafkaProducer

    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await raw.start()
    key = b"lk_test0001"
    await raw.send_and_wait(topics.input, b"{not json", key=key, partition=0)
    invalid = sales_activity(1).model_copy(update={"data": {"lead_key": "lk_test0001"}})
    await raw.send_and_wait(topics.input, invalid.to_bytes(), key=key, partition=0)
    await raw.send_and_wait(topics.input, sales_activity(2).to_bytes(), key=key, partition=0)
    await raw.stop()

    engine = create_engine_for(migrated_url)
    await create_effects_table(engine)
    store = Store(engine)
    producer = EventProducer(kafka_bootstrap)
    await producer.start()
    stop = asyncio.Event()
    loop = await consumer_loop(kafka_bootstrap, store, producer, topics, "c1")
    task = asyncio.create_task(loop.run(stop))
    try:

        async def processed() -> bool:
            return (await effect_counts(engine)).get("input-2") == 1

        await wait_until(processed)
    finally:
        stop.set()
        await task
        await producer.stop()
        await engine.dispose()

    dead = await read_topic(kafka_bootstrap, topics.dlq, expected=2)
    assert [value for _, value, _ in dead] == [b"{not json", invalid.to_bytes()]
    first, second = (headers for _, _, headers in dead)
    assert first["dlq.error.type"] == b"undecodable"
    assert second["dlq.error.type"] == b"schema_violation"
    assert b"outcome" in second["dlq.error.message"]  # names the missing field
    assert first["dlq.origin.topic"] == topics.input.encode()
    assert first["dlq.origin.partition"] == b"0"
    assert (first["dlq.origin.offset"], second["dlq.origin.offset"]) == (b"0", b"1")


@pytest.mark.parametrize("transaction_batch", [1, 50], ids=["alone", "batched"])
async def test_handler_that_keeps_failing_is_dead_lettered_after_its_attempts(
    kafka_bootstrap: str, migrated_url: str, topics: Topics, transaction_batch: int
) -> None:
    await produce(kafka_bootstrap, topics.input, [sales_activity(0), sales_activity(50)])
    engine = create_engine_for(migrated_url)
    await create_effects_table(engine)
    good = make_handler(topics.output, "c1")
    attempts: Counter[str] = Counter()

    async def refuses_first(event: CloudEvent, tx: Transaction) -> None:
        attempts[event.id] += 1
        if event.id == "input-0":
            raise ValueError("rep-1 is not on the roster")
        await good(event, tx)

    producer = EventProducer(kafka_bootstrap)
    await producer.start()
    stop = asyncio.Event()
    loop = await consumer_loop(
        kafka_bootstrap,
        Store(engine),
        producer,
        topics,
        "c1",
        refuses_first,
        transaction_batch=transaction_batch,
    )
    task = asyncio.create_task(loop.run(stop))
    try:

        async def processed() -> bool:
            return (await effect_counts(engine)).get("input-50") == 1

        await wait_until(processed)
    finally:
        stop.set()
        await task
        await producer.stop()
        counts = await effect_counts(engine)
        await engine.dispose()
    assert counts == {"input-50": 1}  # the failed attempts rolled back entirely
    # Alone: exactly the policy's two attempts. Batched with input-50 (same key, so same
    # partition): a failed batch is retried one event at a time, so one attempt more at most.
    assert attempts["input-0"] in ({2} if transaction_batch == 1 else {2, 3})
    dead = await read_topic(kafka_bootstrap, topics.dlq, expected=1)
    assert len(dead) == 1
    assert dead[0][2]["dlq.error.type"] == b"handler_failed"
    assert b"not on the roster" in dead[0][2]["dlq.error.message"]


async def test_rebalance_mid_stream_applies_every_effect_exactly_once(
    kafka_bootstrap: str, migrated_url: str, topics: Topics
) -> None:
    total = 2000
    events = [sales_activity(n, lead_count=200) for n in range(total)]
    engines = [create_engine_for(migrated_url) for _ in range(2)]
    await create_effects_table(engines[0])
    producer = EventProducer(kafka_bootstrap)
    await producer.start()
    relay_store = Store(engines[0])
    relay = OutboxRelay(relay_store, producer)
    stops = [asyncio.Event(), asyncio.Event()]
    relay_stop = asyncio.Event()
    loops = [
        await consumer_loop(kafka_bootstrap, Store(engines[i]), producer, topics, f"c{i}")
        for i in range(2)
    ]
    tasks = [
        asyncio.create_task(loops[0].run(stops[0])),
        asyncio.create_task(relay.run(relay_stop, poll_seconds=0.05)),
    ]
    try:
        await produce(kafka_bootstrap, topics.input, events[: total // 2])

        async def at_least(n: int) -> bool:
            return sum((await effect_counts(engines[0])).values()) >= n

        await wait_until(lambda: at_least(200))  # c0 alone has applied a share
        tasks.append(asyncio.create_task(loops[1].run(stops[1])))  # joins: rebalance
        # Its start returns once the group gave it partitions (2 members, 3 partitions: at
        # least one each), so the second half's events on those partitions can only be c1's.
        await asyncio.wait_for(loops[1].ready.wait(), timeout=60)
        await produce(kafka_bootstrap, topics.input, events[total // 2 :])
        await wait_until(lambda: at_least(1200))
        stops[0].set()  # leaves: a second rebalance while the stream continues
        await tasks[0]

        async def all_applied() -> bool:
            return len(await effect_counts(engines[0])) >= total

        await wait_until(all_applied, within=120)
        await wait_until(lambda: _drained(relay_store))
    finally:
        for stop in (*stops, relay_stop):
            stop.set()
        await asyncio.gather(*tasks)
        await producer.stop()
        counts = await effect_counts(engines[0])
        shares = await effect_counts(engines[0], per=effects.c.consumer)
        for engine in engines:
            await engine.dispose()

    assert counts == {e.id: 1 for e in events}
    assert set(shares) == {"c0", "c1"}, shares  # each applied a share: partitions changed hands
    recycled = {f"{e.id}:recycled" for e in events}
    assert await published_ids(kafka_bootstrap, topics.output, recycled) == recycled


async def _drained(store: Store) -> bool:
    return await store.outbox_backlog() == 0
