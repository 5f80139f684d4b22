"""Tables of the shared runtime: the inbox (dedupe) and the outbox (events to publish).

Services declare their own tables on the same ``metadata``; Alembic migrations in
``leadrelay/store/migrations`` are the authority on the schema, a test checks they agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
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
    Index("ix_outbox_unsent", "sent_at", "id"),
)
