"""Reporting's own table: one row per fact it consumed, never another service's table.

``document`` is the fact (``services.reporting.domain``) as JSON, without any personal data
(an assignment's context, which holds the lead's email, is not kept). ``kind``, ``lead_key``
and ``at`` are copies the database searches on: reports read the facts up to their ``to``.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, String, Table

from leadrelay.store.tables import metadata

reporting_facts = Table(
    "reporting_facts",
    metadata,
    Column("event_id", String(300), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("lead_key", String(200), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("document", JSON, nullable=False),
    Index("ix_reporting_facts_at", "at"),
    Index("ix_reporting_facts_lead_key", "lead_key"),
)
