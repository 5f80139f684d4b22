"""SQLite as ``leadrelay up`` configures it: a committed effect survives an OS crash.

The consumer commits its Kafka offset right after the database commit; if that commit could
vanish in a power cut, the event would never be redelivered and its effect would be lost.
"""

from __future__ import annotations

from sqlalchemy import text

from leadrelay.store.engine import create_engine_for

SYNCHRONOUS_FULL = 2


async def test_every_new_sqlite_connection_syncs_each_commit_to_disk(sqlite_url: str) -> None:
    engine = create_engine_for(sqlite_url)
    try:
        async with engine.connect() as connection:
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
            synchronous = (await connection.execute(text("PRAGMA synchronous"))).scalar_one()
    finally:
        await engine.dispose()
    assert (journal, synchronous) == ("wal", SYNCHRONOUS_FULL)
