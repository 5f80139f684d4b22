"""The outbox keeps flowing through outages: a restart of the broker or the database is waited
out, never a reason for the relay or its gauge to die (which would stop the whole process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError

from leadrelay.app.schema import upgrade_async
from leadrelay.metrics import RuntimeMetrics
from leadrelay.runtime.service import report_outbox_backlog
from leadrelay.store.engine import create_engine_for
from leadrelay.store.outbox_relay import OutboxRelay
from leadrelay.store.tables import outbox
from leadrelay.store.unit_of_work import Store

Message = tuple[str, str | None, bytes]
QUEUED: list[Message] = [("leads", f"lk_{n}", f"event {n}".encode()) for n in range(5)]


class BrokerAwayOnce:
    """Times out on the first send as an unreachable broker does, then acknowledges everything;
    sets ``stop`` once ``expected`` messages were delivered."""

    def __init__(self, stop: asyncio.Event, expected: int) -> None:
        self.stop, self.expected = stop, expected
        self.attempts = 0
        self.delivered: list[Message] = []

    async def send_batch(self, messages: Sequence[Message]) -> list[BaseException | None]:
        self.attempts += 1
        if self.attempts == 1:
            raise KafkaTimeoutError("metadata not available")
        self.delivered.extend(messages)
        if len(self.delivered) >= self.expected:
            self.stop.set()
        return [None] * len(messages)


class StartingUpError(Exception):
    """What asyncpg raises while PostgreSQL restarts: "the database system is starting up"."""

    sqlstate = "57P03"


class RestartingDatabase(Store):
    """A store whose first backlog query meets PostgreSQL restarting; sets ``stop`` on the next."""

    def __init__(self, store: Store, stop: asyncio.Event) -> None:
        super().__init__(store.engine, store.clock)
        self.stop = stop
        self.queries = 0

    async def outbox_backlog(self) -> int:
        self.queries += 1
        if self.queries == 1:
            raise DBAPIError("SELECT count(*) FROM outbox", None, StartingUpError())
        self.stop.set()
        return await super().outbox_backlog()


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[Store]:
    """A SQLite outbox holding :data:`QUEUED`, unsent."""
    engine = create_engine_for(sqlite_url)
    created_at = datetime(2026, 11, 24, tzinfo=UTC)
    async with engine.begin() as connection:
        await connection.run_sync(outbox.create)
        await connection.execute(
            insert(outbox),
            [
                {
                    "topic": topic,
                    "message_key": key,
                    "event_id": f"e{n}",
                    "payload": payload,
                    "created_at": created_at,
                }
                for n, (topic, key, payload) in enumerate(QUEUED)
            ],
        )
    yield Store(engine)
    await engine.dispose()


async def test_the_relay_waits_out_an_unreachable_broker_and_publishes_everything_once(
    store: Store,
) -> None:
    stop = asyncio.Event()
    publisher = BrokerAwayOnce(stop, expected=len(QUEUED))
    relay = OutboxRelay(store, publisher, batch_size=2)
    # An hour between polls: the backlog must drain batch after batch without waiting for one.
    await asyncio.wait_for(relay.run(stop, poll_seconds=3600), timeout=30)
    assert publisher.delivered == QUEUED
    assert await store.outbox_backlog() == 0


async def test_the_backlog_gauge_survives_a_database_restart(store: Store) -> None:
    stop = asyncio.Event()
    metrics = RuntimeMetrics.create(registry := CollectorRegistry())
    restarting = RestartingDatabase(store, stop)
    await asyncio.wait_for(report_outbox_backlog(restarting, metrics, stop), timeout=30)
    assert restarting.queries == 2
    assert registry.get_sample_value("leadrelay_outbox_backlog") == len(QUEUED)


class SlowBroker:
    """Acknowledges, but only once ``release`` is set: a send in flight that a second relay
    could overtake."""

    def __init__(self) -> None:
        self.sending, self.release = asyncio.Event(), asyncio.Event()
        self.delivered: list[Message] = []

    async def send_batch(self, messages: Sequence[Message]) -> list[BaseException | None]:
        self.sending.set()
        await self.release.wait()
        self.delivered.extend(messages)
        return [None] * len(messages)


async def test_two_relays_on_one_sqlite_file_never_send_a_row_twice(store: Store) -> None:
    """Two processes on one file (``leadrelay run`` per service) each run a relay."""
    broker = SlowBroker()
    first, second = OutboxRelay(store, broker), OutboxRelay(store, broker)
    in_flight = asyncio.create_task(first.publish_pending())
    await asyncio.wait_for(broker.sending.wait(), timeout=30)  # the first waits for acks
    # without the lock it would read the same rows and wait for the same acks
    assert await asyncio.wait_for(second.publish_pending(), timeout=30) == 0
    broker.release.set()
    assert await in_flight == len(QUEUED)
    assert await second.publish_pending() == 0
    assert broker.delivered == QUEUED


class RefusesOneSend:
    """A broker that refuses ``refused`` (a payload) the first time it is sent, mid-round, and
    acknowledges everything else; ``accepted`` is what it stored, in order."""

    def __init__(self, refused: bytes) -> None:
        self.refused: bytes | None = refused
        self.accepted: list[Message] = []

    async def send_batch(self, messages: Sequence[Message]) -> list[BaseException | None]:
        results: list[BaseException | None] = []
        for message in messages:
            if message[2] == self.refused:
                self.refused = None
                results.append(KafkaTimeoutError("request timed out"))
            else:
                self.accepted.append(message)
                results.append(None)
        return results


def first_copies_per_key(messages: Sequence[Message]) -> dict[str | None, list[bytes]]:
    """Each key's payloads in the order a consumer applies them (a repeated copy is skipped)."""
    order: dict[str | None, list[bytes]] = {}
    for _, key, payload in messages:
        if payload not in order.setdefault(key, []):
            order[key].append(payload)
    return order


async def test_a_refused_send_mid_round_keeps_each_keys_order(database_url: str) -> None:
    await upgrade_async(database_url)
    store = Store(create_engine_for(database_url))
    written = [("leads", f"lk_{n % 2}", f"lk_{n % 2} event {n // 2}".encode()) for n in range(8)]
    async with store.transaction() as tx:
        await tx.connection.execute(
            insert(outbox),
            [
                {"topic": t, "message_key": k, "event_id": f"e{n}", "payload": p}
                | {"created_at": datetime(2026, 11, 24, tzinfo=UTC)}
                for n, (t, k, p) in enumerate(written)
            ],
        )
    broker = RefusesOneSend(refused=b"lk_0 event 1")
    relay = OutboxRelay(store, broker)
    try:
        first_round = await relay.publish_pending()
        async with store.read() as connection:
            errors = (
                await connection.execute(select(outbox.c.event_id, outbox.c.last_error))
            ).all()
        while await relay.publish_pending():
            pass
        backlog = await store.outbox_backlog()
    finally:
        await store.dispose()
    assert first_round == 5  # lk_0 stopped at its refused row; lk_1 went on
    assert {event_id: error for event_id, error in errors if error} == {
        "e2": "KafkaTimeoutError('request timed out')"
    }
    assert backlog == 0
    assert first_copies_per_key(broker.accepted) == {
        key: [p for _, k, p in written if k == key] for key in ("lk_0", "lk_1")
    }
