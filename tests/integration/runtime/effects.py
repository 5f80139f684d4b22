"""A deliberately non-idempotent effect, so that applying an event twice is visible.

The handler inserts one row per application into ``test_effects`` and queues one outbox event;
exactly-once means one row and one published event per input event, whatever crashed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.metrics import RuntimeMetrics
from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.consumer import ConsumerConfig, ConsumerLoop, EventHandlers, Handler
from leadrelay.runtime.producer import EventProducer
from leadrelay.store.unit_of_work import Store, Transaction

test_metadata = MetaData()
effects = Table(
    "test_effects",
    test_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(300), nullable=False),
    Column("consumer", String(100), nullable=False),
)

INPUT_TYPE = "leadrelay.sales_activity.v1"


def sales_activity(n: int, *, lead_count: int = 50) -> CloudEvent:
    """The n-th input event; ``lead_count`` distinct keys spread them over partitions."""
    lead_key = f"lk_test{n % lead_count:04d}"
    return new_event(
        INPUT_TYPE,
        source="tests",
        id=f"input-{n}",
        subject=lead_key,
        data={
            "lead_key": lead_key,
            "rep_id": "rep-1",
            "outcome": "rejected",
            "reason": f"test {n}",
            "occurred_at": datetime(2026, 11, 24, tzinfo=UTC),
        },
    )


def make_handler(out_topic: str, consumer_name: str):  # type: ignore[no-untyped-def]
    """A handler recording one effect row and queuing one recycle event per input."""

    async def handle(event: CloudEvent, tx: Transaction) -> None:
        await tx.connection.execute(
            insert(effects).values(event_id=event.id, consumer=consumer_name)
        )
        lead_key = event.data["lead_key"]
        await tx.publish(
            out_topic,
            new_event(
                "leadrelay.lead_recycled.v1",
                source="tests",
                id=f"{event.id}:recycled",
                subject=lead_key,
                data={
                    "lead_key": lead_key,
                    "reason": "rejected_by_sales",
                    "recycled_at": datetime(2026, 11, 24, tzinfo=UTC),
                },
            ),
        )

    return handle


async def create_effects_table(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(test_metadata.create_all)


async def effect_counts(
    engine: AsyncEngine, *, per: Column[str] = effects.c.event_id
) -> dict[str, int]:
    """How many effects were applied per input event (or ``per=effects.c.consumer``: per
    consumer)."""
    async with Store(engine).read() as connection:  # never waits for the worker's writes
        rows = await connection.execute(select(per, func.count()).group_by(per))
        return {name: count for name, count in rows.all()}


async def produce(bootstrap: str, topic: str, events: Sequence[CloudEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        batch = [
            await producer.send(topic, e.to_bytes(), key=(e.subject or "").encode()) for e in events
        ]
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


Message = tuple[bytes | None, bytes, dict[str, bytes]]


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expected: int,
    within: float = 60.0,
    until: Callable[[list[Message]], bool] | None = None,
) -> list[Message]:
    """Read ``topic`` from the start until ``expected`` messages arrived or the deadline passed.

    ``until``, when given, must also hold before reading stops: a test waiting for one
    particular event must not stop at the first ``expected`` unrelated ones. Keeps reading
    briefly after that so that extra (duplicate) messages show.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    messages: list[Message] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    settle_until: float | None = None
    try:
        while loop.time() < deadline:
            if settle_until is not None and loop.time() > settle_until:
                break
            batches = await consumer.getmany(timeout_ms=300)
            for records in batches.values():
                messages.extend((r.key, r.value or b"", dict(r.headers)) for r in records)
            enough = len(messages) >= expected and (until is None or until(messages))
            if enough and settle_until is None:
                settle_until = loop.time() + 1.0
    finally:
        await consumer.stop()
    return messages


async def wait_until(predicate, *, within: float = 60.0, interval: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` (async, returns bool) until true, or fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached before the deadline")
        await asyncio.sleep(interval)


class Topics:
    """One test's input, output and dead-letter topics and its consumer group."""

    def __init__(self, prefix: str) -> None:
        self.input = f"{prefix}input"
        self.output = f"{prefix}output"
        self.dlq = f"{prefix}dead-letter"
        self.group = f"{prefix}group"

    @property
    def all(self) -> list[str]:
        return [self.input, self.output, self.dlq]


async def consumer_loop(
    bootstrap: str,
    store: Store,
    producer: EventProducer,
    topics: Topics,
    name: str,
    handler: Handler | None = None,
    transaction_batch: int = 50,
    metrics: RuntimeMetrics | None = None,
) -> ConsumerLoop:
    """A consume loop on ``topics.input`` with two handler attempts and short back-offs."""
    return ConsumerLoop(
        ConsumerConfig(
            group=topics.group,
            topics=[topics.input],
            dead_letter_topic=topics.dlq,
            batch_size=100,
            transaction_batch=transaction_batch,
            handler_max_attempts=2,
            backoff=BackoffPolicy(0.01, 0.2),
            session_timeout_ms=6000,
            heartbeat_interval_ms=500,
        ),
        bootstrap=bootstrap,
        handlers=EventHandlers.per_event(
            {INPUT_TYPE: handler or make_handler(topics.output, name)}
        ),
        store=store,
        producer=producer,
        metrics=metrics or RuntimeMetrics.create(CollectorRegistry()),
    )
