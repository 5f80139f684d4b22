"""Scoring's tables, on the runtime's shared ``metadata`` (migration ``scoring_0001`` creates them).

``scoring_leads`` holds one row per lead key: the whole domain state as JSON (the authority) and,
beside it, the last score and the flat columns an operator queries (stage, grade, scores).
``scoring_visitors`` holds activity by anonymous id until a form links the visitor to a lead;
after that it only remembers the link, so late anonymous activity still finds its lead. A visitor
never linked is deleted once idle for the scorecard's ``engagement.retention``.
Names are prefixed with the service because every service shares one database.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Float, Index, Integer, String, Table

from leadrelay.store.tables import metadata

leads = Table(
    "scoring_leads",
    metadata,
    Column("lead_key", String(200), primary_key=True),
    Column("stage", String(32), nullable=False),
    Column("grade", String(1), nullable=True),
    Column("fit_score", Float, nullable=True),
    Column("engagement_score", Float, nullable=True),
    Column("episode", Integer, nullable=False),
    Column("scorecard_version", String(100), nullable=True),
    Column("score", JSON, nullable=True),
    Column("state", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""``score`` is ``dump_score`` of the latest scoring (decay applied up to its ``scored_at``)."""

visitors = Table(
    "scoring_visitors",
    metadata,
    Column("anonymous_id", String(200), primary_key=True),
    Column("lead_key", String(200), nullable=True),
    Column("activities", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_scoring_visitors_updated_at", "updated_at"),  # the retention sweep's filter
)
"""``activities``: what the visitor did while unlinked (``dump_activities``; empty once linked)."""
