"""Tables of the shared runtime: the inbox (dedupe) and the outbox (events to publish).

Services declare their own tables on the same ``metadata``; Alembic migrations in
``leadrelay/store/migrations`` are the authority on the schema, a test checks they agree.
"""

from __future__ import annotations

import zlib

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData()

# BigInteger for PostgreSQL, INTEGER on SQLite so that it stays an auto-incrementing rowid alias.
BigIntegerId = BigInteger().with_variant(Integer(), "sqlite")

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(200), primary_key=True),
    Column("event_id", String(300), primary_key=True),
    Column("processed_at", DateTime(timezone=True), nullable=False),
    Index("ix_inbox_processed_at", "processed_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigIntegerId, primary_key=True, autoincrement=True),
    Column("topic", String(300), nullable=False),
    Column("message_key", String(300), nullable=True),
    Column("event_id", String(300), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("relay_bucket", SmallInteger, nullable=False, server_default="0"),
    Index("ix_outbox_unsent", "sent_at", "id"),
    Index(
        "ix_outbox_unsent_bucket",
        "relay_bucket",
        "id",
        postgresql_where=Column("sent_at").is_(None),
        sqlite_where=Column("sent_at").is_(None),
    ),
)

RELAY_BUCKETS = 64
"""How many relay buckets the outbox's keys hash into (each has its own relay lock on
PostgreSQL). Part of the stored format: a key's rows must stay in one bucket, so never change it
while rows are unsent."""


def relay_bucket(message_key: str | None, event_id: str) -> int:
    """The outbox bucket of a row: a fixed hash (CRC-32) of its key, so every row of one key is
    in one bucket and relays keep its order; a row without a key hashes its event id."""
    hashed = message_key if message_key is not None else event_id
    return zlib.crc32(hashed.encode()) % RELAY_BUCKETS
