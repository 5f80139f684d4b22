"""Each class of failure.py's table, met for real: provoked on PostgreSQL, handled by the loop.

The first half makes PostgreSQL raise each transient SQLSTATE for real (a deadlock, a lock that
is not available, a cancelled statement, a serialization failure) through asyncpg and SQLAlchemy
and checks how it is classified. The second half runs the consume loop on real Kafka with a
handler that fails in each class, and checks what the table promises: retried without using an
attempt, dead-lettered at once, or dead-lettered after its attempts.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.errors import DomainRefusal
from leadrelay.metrics import RuntimeMetrics
from leadrelay.runtime.failure import FailureClass, classify
from leadrelay.runtime.producer import EventProducer
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import DatabaseUnavailableError, Store, Transaction
from tests.harness.postgres import scratch_database
from tests.integration.runtime.effects import (
    Topics,
    consumer_loop,
    create_effects_table,
    effect_counts,
    make_handler,
    produce,
    read_topic,
    sales_activity,
    wait_until,
)
from tests.unit.scoring.service_events import web

MAX_ATTEMPTS = 2  # consumer_loop's handler_max_attempts


@pytest.fixture
async def pg_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    async with scratch_database(postgres_url) as url:
        engine = create_engine_for(url)
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE rows (id int PRIMARY KEY, v int)"))
            await connection.execute(text("INSERT INTO rows VALUES (1, 0), (2, 0)"))
        yield engine
        await engine.dispose()


def sqlstate_of(error: BaseException) -> str:
    """The SQLSTATE PostgreSQL sent, as the asyncpg adapter keeps it on the wrapped error."""
    assert isinstance(error, DBAPIError), error
    return str(cast(Any, error.orig).sqlstate)


async def raised(work: Awaitable[object]) -> BaseException:
    try:
        await work
    except Exception as error:
        return error
    raise AssertionError("expected PostgreSQL to refuse")


async def lock_rows(
    connection: AsyncConnection, first: int, then: int, both: asyncio.Barrier
) -> None:
    await connection.execute(text("SELECT 1 FROM rows WHERE id = :id FOR UPDATE"), {"id": first})
    await both.wait()  # each holds its first row before asking for the other's
    await connection.execute(text("SELECT 1 FROM rows WHERE id = :id FOR UPDATE"), {"id": then})


@pytest.mark.postgres
async def test_a_real_deadlock_is_transient(pg_engine: AsyncEngine) -> None:
    both = asyncio.Barrier(2)

    async def side(first: int, then: int) -> None:
        async with pg_engine.begin() as connection:
            await lock_rows(connection, first, then, both)

    outcomes = await asyncio.gather(side(1, 2), side(2, 1), return_exceptions=True)
    [deadlock] = [o for o in outcomes if isinstance(o, BaseException)]  # PostgreSQL picks one
    assert sqlstate_of(deadlock) == "40P01"
    assert classify(deadlock) is FailureClass.TRANSIENT


@pytest.mark.postgres
async def test_a_lock_that_is_not_available_is_transient(pg_engine: AsyncEngine) -> None:
    async with pg_engine.begin() as holder:
        await holder.execute(text("SELECT 1 FROM rows WHERE id = 1 FOR UPDATE"))
        async with pg_engine.begin() as other:
            await other.execute(text("SET LOCAL lock_timeout = '50ms'"))
            error = await raised(other.execute(text("UPDATE rows SET v = 1 WHERE id = 1")))
    assert sqlstate_of(error) == "55P03"
    assert classify(error) is FailureClass.TRANSIENT


@pytest.mark.postgres
async def test_a_cancelled_statement_is_transient(pg_engine: AsyncEngine) -> None:
    async with pg_engine.begin() as connection:
        await connection.execute(text("SET LOCAL statement_timeout = '50ms'"))
        error = await raised(connection.execute(text("SELECT pg_sleep(30)")))
    assert sqlstate_of(error) == "57014"
    assert classify(error) is FailureClass.TRANSIENT


@pytest.mark.postgres
async def test_a_real_serialization_failure_is_transient(pg_engine: AsyncEngine) -> None:
    """Two SERIALIZABLE transactions each read what the other writes: one must fail."""
    serializable = pg_engine.execution_options(isolation_level="SERIALIZABLE")
    async with serializable.connect() as a, serializable.connect() as b:
        await a.begin()
        await b.begin()
        await a.execute(text("SELECT sum(v) FROM rows"))
        await b.execute(text("SELECT sum(v) FROM rows"))
        await a.execute(text("UPDATE rows SET v = v + 1 WHERE id = 1"))
        await b.execute(text("UPDATE rows SET v = v + 1 WHERE id = 2"))
        await a.commit()
        error = await raised(b.commit())
    assert sqlstate_of(error) == "40001"
    assert classify(error) is FailureClass.TRANSIENT


async def test_a_database_that_cannot_be_reached_is_infrastructure() -> None:
    store = Store(create_engine_for("postgresql+asyncpg://leadrelay@127.0.0.1:1/none"))
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            async with store.transaction():
                pass
    finally:
        await store.dispose()
    assert classify(caught.value) is FailureClass.INFRASTRUCTURE


# -- the consume loop, on real Kafka --------------------------------------------------------


class Failing:
    """A handler failing with ``fail(tx)`` on input-0's first ``times`` attempts, then working."""

    def __init__(self, topics: Topics, fail: Callable[[Transaction], Awaitable[None]], times: int):
        self.good = make_handler(topics.output, "c1")
        self.fail, self.times = fail, times
        self.calls: Counter[str] = Counter()

    async def __call__(self, event: CloudEvent, tx: Transaction) -> None:
        self.calls[event.id] += 1
        if event.id == "input-0" and self.calls[event.id] <= self.times:
            await self.fail(tx)
        await self.good(event, tx)


async def run_until_applied(
    kafka_bootstrap: str, url: str, topics: Topics, handler: Failing, registry: CollectorRegistry
) -> dict[str, int]:
    """Consume input-0 and input-50 (same key, same partition, in that order) until input-50's
    effect committed: the partition moved past input-0, whatever happened to it."""
    await produce(kafka_bootstrap, topics.input, [sales_activity(0), sales_activity(50)])
    engine = create_engine_for(url)
    await create_effects_table(engine)
    producer = EventProducer(kafka_bootstrap)
    await producer.start()
    stop = asyncio.Event()
    metrics = RuntimeMetrics.create(registry)
    loop = await consumer_loop(
        kafka_bootstrap, Store(engine), producer, topics, "c1", handler, 1, metrics
    )
    task = asyncio.create_task(loop.run(stop))
    try:

        async def moved_on() -> bool:
            return (await effect_counts(engine)).get("input-50") == 1

        await wait_until(moved_on)
    finally:
        stop.set()
        await task
        await producer.stop()
        counts = await effect_counts(engine)
        await engine.dispose()
    return counts


def failures(registry: CollectorRegistry, topics: Topics, reason: str) -> float:
    labels = {"group": topics.group, "topic": topics.input, "reason": reason}
    return registry.get_sample_value("leadrelay_messages_failed_total", labels) or 0.0


async def dead_letters(kafka_bootstrap: str, topics: Topics, expected: int) -> list[bytes]:
    messages = await read_topic(kafka_bootstrap, topics.dlq, expected=expected)
    return [headers["dlq.error.type"] for _, _, headers in messages]


def raise_sqlstate(sqlstate: str) -> Callable[[Transaction], Awaitable[None]]:
    """Make PostgreSQL itself raise ``sqlstate`` inside the handler's transaction."""

    async def fail(tx: Transaction) -> None:
        await tx.connection.execute(
            text(f"DO $$ BEGIN RAISE EXCEPTION 'provoked' USING ERRCODE = '{sqlstate}'; END $$")
        )

    return fail


@pytest.mark.postgres
@pytest.mark.parametrize("sqlstate", ["40001", "40P01", "55P03", "57014"])
async def test_transient_postgres_errors_are_retried_without_using_attempts(
    kafka_bootstrap: str, postgres_url: str, topics: Topics, sqlstate: str
) -> None:
    handler = Failing(topics, raise_sqlstate(sqlstate), times=MAX_ATTEMPTS + 2)
    registry = CollectorRegistry()
    async with scratch_database(postgres_url) as url:
        await upgrade_async(url)
        counts = await run_until_applied(kafka_bootstrap, url, topics, handler, registry)
    assert counts == {"input-0": 1, "input-50": 1}  # applied once, after more than max attempts
    assert handler.calls["input-0"] == MAX_ATTEMPTS + 3
    assert failures(registry, topics, "transient") == MAX_ATTEMPTS + 2
    assert await dead_letters(kafka_bootstrap, topics, expected=0) == []


async def test_an_outage_mid_handler_is_retried_without_using_attempts(
    kafka_bootstrap: str, migrated_url: str, topics: Topics
) -> None:
    async def connection_reset(tx: Transaction) -> None:
        raise ConnectionResetError("connection reset by peer")

    handler = Failing(topics, connection_reset, times=MAX_ATTEMPTS + 2)
    registry = CollectorRegistry()
    counts = await run_until_applied(kafka_bootstrap, migrated_url, topics, handler, registry)
    assert counts == {"input-0": 1, "input-50": 1}
    assert failures(registry, topics, "infrastructure") == MAX_ATTEMPTS + 2
    assert await dead_letters(kafka_bootstrap, topics, expected=0) == []


async def test_a_domain_refusal_is_dead_lettered_at_the_first_failure(
    kafka_bootstrap: str, migrated_url: str, topics: Topics
) -> None:
    async def refuse(tx: Transaction) -> None:
        raise DomainRefusal("rep-1 is not on the roster")

    handler = Failing(topics, refuse, times=100)
    registry = CollectorRegistry()
    counts = await run_until_applied(kafka_bootstrap, migrated_url, topics, handler, registry)
    assert counts == {"input-50": 1}
    assert handler.calls["input-0"] == 1
    assert await dead_letters(kafka_bootstrap, topics, expected=1) == [b"refused"]


@pytest.mark.parametrize("error", [FileNotFoundError("rules.yaml"), TimeoutError("slow call")])
async def test_a_handlers_own_os_error_is_dead_lettered_after_its_attempts(
    kafka_bootstrap: str, migrated_url: str, topics: Topics, error: Exception
) -> None:
    """Not mistaken for an outage, which would block the partition forever."""

    async def bug(tx: Transaction) -> None:
        raise error

    handler = Failing(topics, bug, times=100)
    registry = CollectorRegistry()
    counts = await run_until_applied(kafka_bootstrap, migrated_url, topics, handler, registry)
    assert counts == {"input-50": 1}
    assert handler.calls["input-0"] == MAX_ATTEMPTS
    assert failures(registry, topics, "handler") == MAX_ATTEMPTS
    assert await dead_letters(kafka_bootstrap, topics, expected=1) == [b"handler_failed"]


async def test_an_event_type_without_a_handler_is_skipped(
    kafka_bootstrap: str, migrated_url: str, topics: Topics
) -> None:
    """Topics carry several types: one this service does not handle is neither applied nor
    dead-lettered, and the events behind it on its partition still are."""
    other = web("web-1", datetime.now(UTC), key="lk_test0000")  # input-0's key: same partition
    await produce(kafka_bootstrap, topics.input, [other])

    async def never(tx: Transaction) -> None:
        raise AssertionError("not called")

    handler = Failing(topics, never, times=0)
    registry = CollectorRegistry()
    counts = await run_until_applied(kafka_bootstrap, migrated_url, topics, handler, registry)
    assert counts == {"input-0": 1, "input-50": 1}
    assert "web-1" not in handler.calls
    assert await dead_letters(kafka_bootstrap, topics, expected=0) == []
