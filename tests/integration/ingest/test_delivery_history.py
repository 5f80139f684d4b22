"""The delivery history across processes and restarts, on SQLite and PostgreSQL: a replay is
refused by a replica that did not accept the original, and by a restarted one."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from leadrelay.app.schema import upgrade_async
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store, utc_now
from services.ingest.domain.delivery_window import Seen
from services.ingest.domain.signatures import Delivery, SignatureError
from services.ingest.repository import SeenDeliveries

TOLERANCE = timedelta(minutes=5)


def accepted_delivery() -> Delivery:
    delivery_id = f"msg_{uuid.uuid4().hex}"
    return Delivery(delivery_id, f"content-{delivery_id}", f"body-{delivery_id}", utc_now())


def history_on(store: Store) -> SeenDeliveries:
    return SeenDeliveries(store, TOLERANCE, utc_now, refresh_seconds=0.05)


async def is_replayed(history: SeenDeliveries, delivery: Delivery) -> bool:
    try:
        await history.check("generic", delivery)
    except SignatureError as error:
        return error.reason == "replayed"
    return False


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[list[Store]]:
    """Two processes' stores on one migrated database."""
    await upgrade_async(database_url)
    opened = [Store(create_engine_for(database_url)) for _ in range(2)]
    yield opened
    for store in opened:
        await store.dispose()


async def test_a_restarted_ingest_refuses_a_replay_of_what_it_accepted_before(
    stores: list[Store],
) -> None:
    delivery = accepted_delivery()
    before = history_on(stores[0])
    assert await before.check("generic", delivery) is Seen.NEW
    before.remember("generic", delivery, utc_now())
    await before.close()  # writes what it accepted

    after = history_on(stores[0])
    try:
        assert await is_replayed(after, delivery)
        retry = Delivery(delivery.delivery_id, "re-signed", delivery.body_sha256, utc_now())
        assert await after.check("generic", retry) is Seen.RETRY_OF_ACCEPTED
        assert after.complete
    finally:
        await after.close()


async def test_another_replica_refuses_a_replay_once_it_has_refreshed(
    stores: list[Store],
) -> None:
    first, second = history_on(stores[0]), history_on(stores[1])
    try:
        delivery = accepted_delivery()
        assert await second.check("generic", delivery) is Seen.NEW  # loaded, knows nothing
        first.remember("generic", delivery, utc_now())
        deadline = time.monotonic() + 20
        while not await is_replayed(second, delivery):
            assert time.monotonic() < deadline, "the other replica never saw the delivery"
            await asyncio.sleep(0.05)
        assert await is_replayed(first, delivery)
    finally:
        await first.close()
        await second.close()
