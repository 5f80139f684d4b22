"""SQLite without a thread hop per statement, and without blocking the loop on another process.

A write transaction hands the event loop's work to a thread once (its commit), however many
statements it runs; a read never. A writer that finds SQLite's write lock held by another
process waits on a worker thread, so the process goes on serving while it waits.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks.sqlite_bench import counting_thread_hops
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[Store]:
    store = Store(create_engine_for(sqlite_url))
    async with store.transaction() as transaction:  # opens the pooled connection
        await transaction.connection.execute(text("CREATE TABLE notes (body TEXT NOT NULL)"))
    yield store
    await store.dispose()


async def write_notes(store: Store, count: int) -> int:
    """Write ``count`` notes, one statement each, in one transaction; the thread hops it took."""
    with counting_thread_hops() as hops:
        async with store.transaction() as transaction:
            for n in range(count):
                await transaction.connection.execute(
                    text("INSERT INTO notes VALUES (:body)"), {"body": f"note {n}"}
                )
        return hops()


async def test_a_write_transaction_costs_one_thread_hop_however_many_statements(
    store: Store,
) -> None:
    assert [await write_notes(store, count) for count in (1, 50)] == [1, 1]


async def test_a_read_costs_no_thread_hop(store: Store) -> None:
    await write_notes(store, 3)
    with counting_thread_hops() as hops:
        async with store.read() as connection:
            notes = (await connection.execute(text("SELECT count(*) FROM notes"))).scalar_one()
    assert (notes, hops()) == (3, 0)


async def test_a_writer_waits_for_another_process_without_holding_up_the_loop(
    store: Store, sqlite_url: str
) -> None:
    other_process = sqlite3.connect(str(make_url(sqlite_url).database), isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        other_process.execute("INSERT INTO notes VALUES ('the other process')")
        ours = asyncio.ensure_future(write_notes(store, 1))
        for _ in range(20):  # the loop keeps running other tasks while our writer waits
            await asyncio.sleep(0.01)
        assert not ours.done()
        other_process.execute("COMMIT")
        await asyncio.wait_for(ours, timeout=60)
    finally:
        other_process.close()
    async with store.read() as connection:
        result = await connection.execute(text("SELECT body FROM notes ORDER BY rowid"))
        bodies = result.scalars().all()
    assert bodies == ["the other process", "note 0"]
