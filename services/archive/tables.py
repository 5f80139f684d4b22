"""The archive's one table, on the runtime's shared ``metadata`` (migration ``archive_0001``).

``archive_events`` keeps every input event LeadRelay consumed (web activity, forms, sales
activity, recycles) as the CloudEvent bytes it arrived as, with the time the archive received
it, for ``archive_retention``. ``seq`` is the order of arrival, the order replay applies them in.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
)

from leadrelay.store.tables import metadata

archived_events = Table(
    "archive_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    Column("lead_key", String(200), nullable=True),
    Column("source", String(500), nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Index("ix_archive_events_received_at", "received_at"),  # replay's --since, the sweep
)
