"""``Store.read()``: reads never wait for writers, and see one snapshot, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select, text

from leadrelay.app.schema import upgrade_async
from leadrelay.store.engine import create_engine_for
from leadrelay.store.tables import outbox
from leadrelay.store.unit_of_work import Store, Transaction
from tests.harness.postgres import scratch_database

READER_DEADLINE = 20.0
"""Shorter than SQLite's 30 s busy timeout: a reader that queued behind the writer fails here."""


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    await upgrade_async(database_url)
    store = Store(create_engine_for(database_url))
    yield store
    await store.dispose()


async def queue_row(tx: Transaction, n: int) -> None:
    await tx.connection.execute(
        insert(outbox).values(
            topic="t", message_key="k", event_id=f"e{n}", payload=b"x", created_at=datetime.now(UTC)
        )
    )


async def test_a_reader_is_not_blocked_by_an_open_writer_on_sqlite(sqlite_url: str) -> None:
    await upgrade_async(sqlite_url)
    store = Store(create_engine_for(sqlite_url))
    writing, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with store.transaction() as tx:
            await queue_row(tx, 1)
            writing.set()
            await release.wait()  # holds SQLite's one write lock until the reader is done

    held = asyncio.create_task(writer())
    try:
        await asyncio.wait_for(writing.wait(), READER_DEADLINE)
        backlog = await asyncio.wait_for(store.outbox_backlog(), READER_DEADLINE)
        await asyncio.wait_for(store.ping(), READER_DEADLINE)
        assert not held.done()  # the writer was open all along
        assert backlog == 0  # and its row is not visible before it commits
    finally:
        release.set()
        await held
        await store.dispose()
    assert await Store(create_engine_for(sqlite_url)).outbox_backlog() == 1


async def test_a_read_sees_one_snapshot_while_others_commit(store: Store) -> None:
    count = select(func.count()).select_from(outbox)
    async with store.read() as connection:
        before = (await connection.execute(count)).scalar_one()
        async with store.transaction() as tx:
            await queue_row(tx, 1)
        after = (await connection.execute(count)).scalar_one()
    assert (before, after) == (0, 0)
    assert await store.outbox_backlog() == 1


@pytest.mark.postgres
async def test_a_read_on_postgres_is_read_only(postgres_url: str) -> None:
    async with scratch_database(postgres_url) as url:
        await upgrade_async(url)
        store = Store(create_engine_for(url))
        try:
            async with store.read() as connection:
                level = await connection.scalar(text("SHOW transaction_isolation"))
                read_only = await connection.scalar(text("SHOW transaction_read_only"))
        finally:
            await store.dispose()
    assert (level, read_only) == ("repeatable read", "on")
