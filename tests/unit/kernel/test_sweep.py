"""Retention sweeps delete in batches, and a shutdown ends them between batches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from leadrelay.store.engine import create_engine_for
from leadrelay.store.sweep import delete_in_batches
from leadrelay.store.unit_of_work import Store, Transaction

BATCH = 10


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[Store]:
    engine = create_engine_for(sqlite_url)
    yield Store(engine)
    await engine.dispose()


class Backlog:
    """``rows`` waiting to be deleted; deletes up to a batch per call, in its own transaction."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.batches: list[int] = []

    async def delete_batch(self, tx: Transaction) -> int:
        deleted = min(self.rows, BATCH)
        self.rows -= deleted
        return deleted


async def test_a_sweep_deletes_batch_after_batch_until_one_falls_short(store: Store) -> None:
    backlog = Backlog(rows=35)
    total = await delete_in_batches(
        store, backlog.delete_batch, batch_size=BATCH, on_deleted=backlog.batches.append
    )
    assert (total, backlog.batches, backlog.rows) == (35, [10, 10, 10, 5], 0)


async def test_a_shutdown_ends_the_sweep_after_the_batch_in_progress(store: Store) -> None:
    backlog = Backlog(rows=1_000)
    stop = asyncio.Event()

    def deleted(count: int) -> None:
        backlog.batches.append(count)
        stop.set()  # the orchestrator's SIGTERM arrives during the first batch

    total = await delete_in_batches(
        store, backlog.delete_batch, batch_size=BATCH, on_deleted=deleted, stop=stop
    )
    assert (total, backlog.rows) == (BATCH, 1_000 - BATCH)
