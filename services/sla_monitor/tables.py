"""The SLA monitor's table: one row per clock, indexed for the firing loop and the lead view.

The whole clock is the JSON ``document`` (the domain's ``SlaClock``); the other columns are the
parts the database must search on: ``next_fire_at`` for the firing loop, ``lead_key`` and
``assignment_id`` for sales activity and sibling clocks, ``state`` for the open-clocks gauge,
``role``/``team`` for metric labels (the domain clock does not carry them), ``rep_id`` to find a
rep's clocks when the roster changes (null only on closed clocks stored before it existed).

``sla_parked_activity`` holds sales activity that arrived before the assignment it is about:
the two travel on different topics, so a monitor catching up after downtime may read a rep's
acceptance before the ``lead_assigned`` that starts the clocks it stops.

``sla_reps`` is the monitor's own copy of hand-off's roster: the latest ``rep_updated`` of each
rep (calendar, manager, out-of-office periods), as the whole event payload in ``document``; a
rep never announced there is kept from the snapshot of their latest assignment instead.

``sla_forecasts`` holds each clock a forecast found at risk (the ``sla_at_risk`` payload in
``document``), so the forecaster announces a clock, and hands its lead on, once.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Index, String, Table

from leadrelay.store.tables import metadata

sla_clocks = Table(
    "sla_clocks",
    metadata,
    Column("clock_id", String(64), primary_key=True),
    Column("lead_key", String(200), nullable=False),
    Column("assignment_id", String(200), nullable=False),
    Column("rep_id", String(200), nullable=True),
    Column("role", String(16), nullable=False),
    Column("team", String(256), nullable=True),
    Column("state", String(16), nullable=False),
    Column("next_fire_at", DateTime(timezone=True), nullable=True),
    Column("document", JSON, nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Index("ix_sla_clocks_lead_key", "lead_key"),
    Index("ix_sla_clocks_assignment_id", "assignment_id"),
    Index("ix_sla_clocks_next_fire_at", "next_fire_at", "clock_id"),  # matches the firing ORDER BY
    Index("ix_sla_clocks_state", "state"),
    Index("ix_sla_clocks_rep_id", "rep_id"),
    Index("ix_sla_clocks_rep_completed", "rep_id", "completed_at"),  # a rep's recent pace
)

sla_parked_activity = Table(
    "sla_parked_activity",
    metadata,
    Column("event_id", String(300), primary_key=True),
    Column("lead_key", String(200), nullable=False),
    Column("parked_at", DateTime(timezone=True), nullable=False),
    Column("document", JSON, nullable=False),
    Index("ix_sla_parked_activity_lead_key", "lead_key"),
    Index("ix_sla_parked_activity_parked_at", "parked_at"),
)

sla_reps = Table(
    "sla_reps",
    metadata,
    Column("rep_id", String(200), primary_key=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("document", JSON, nullable=False),
)

sla_forecasts = Table(
    "sla_forecasts",
    metadata,
    Column("clock_id", String(64), primary_key=True),
    Column("lead_key", String(200), nullable=False),
    Column("rep_id", String(200), nullable=False),
    Column("forecast_at", DateTime(timezone=True), nullable=False),
    Column("reassigned", Boolean, nullable=False),
    Column("document", JSON, nullable=False),
)
