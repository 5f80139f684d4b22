"""Hand-off's tables on the runtime's shared ``metadata`` (migration ``handoff_0001`` creates them).

* ``handoff_reps`` / ``handoff_accounts``: the roster, one JSON document per rep or account (the
  domain model dumped as JSON). Seeded from the definitions file; the API's edits win after that.
* ``handoff_roster_version``: one row whose ``version`` goes up in the transaction of every
  roster change, so each process keeps the roster in memory and reloads it only when it moved.
* ``handoff_rotation``: the round-robin credits, one row per pool. A decision locks the row of
  its pool (``SELECT ... FOR UPDATE``), so decisions of one pool run one at a time across
  instances and decisions of different pools in parallel; ``version`` is checked again on
  write (compare-and-set) as a second guard.
* ``handoff_rep_load``: per rep, assignments on their local day and leads they currently hold;
  a decision locks the rows of the reps it may charge. Every rep of the roster has a row.
* ``handoff_lead_context``: the sales-ready payload per lead and episode, for reassignments.
* ``handoff_assignments``: every assignment made, with its trace and the published event.
  ``UNIQUE(lead_key, episode, attempt)`` is the last line of the exactly-once guarantee: two
  instances can never both commit an assignment for the same attempt.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    false,
)

from leadrelay.store.tables import metadata

ROSTER_VERSION_ID = "roster"
"""The id of the one roster-version row."""

reps = Table(
    "handoff_reps",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("document", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

accounts = Table(
    "handoff_accounts",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("document", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

roster_version = Table(
    "handoff_roster_version",
    metadata,
    Column("id", String(50), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

rotation = Table(
    "handoff_rotation",
    metadata,
    Column("pool", String(300), primary_key=True),
    Column("credits", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""``credits`` is ``{rep_id: credit}`` of the pool; ``version`` counts its changes."""

rep_load = Table(
    "handoff_rep_load",
    metadata,
    Column("rep_id", String(128), primary_key=True),
    Column("day", Date, nullable=True),
    Column("assigned_on_day", Integer, nullable=False),
    Column("open_leads", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
"""``day`` is the rep's local date ``assigned_on_day`` counts for (see ``RepLoad``)."""

lead_context = Table(
    "handoff_lead_context",
    metadata,
    Column("lead_key", String(200), nullable=False),
    Column("episode", Integer, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("lead_key", "episode", name="pk_handoff_lead_context"),
)
"""``payload`` is the ``LeadSalesReady`` data as received (JSON mode)."""

assignments = Table(
    "handoff_assignments",
    metadata,
    Column("assignment_id", String(200), primary_key=True),
    Column("lead_key", String(200), nullable=False),
    Column("episode", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("rep_id", String(128), nullable=True),
    Column("fallback_queue", String(200), nullable=True),
    Column("route", String(32), nullable=False),
    Column("role", String(8), nullable=False),
    Column("team", String(256), nullable=True),
    Column("trace", JSON, nullable=False),
    Column("event", JSON, nullable=False),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=True),
    Column("released_by", String(32), nullable=True),
    Column("pool", String(300), nullable=True),
    Column("credit_returned", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("lead_key", "episode", "attempt", name="uq_handoff_assignments_attempt"),
    Index("ix_handoff_assignments_rep", "rep_id"),
)
"""``rep_id`` is NULL for a lead left in ``fallback_queue`` with nobody to own it; ``event`` is the
published ``LeadAssigned`` data (context, trace and SLA terms); ``released_at`` is when the rep
stopped holding the lead (won, lost, rejected, disqualified, or reassigned), freeing capacity."""

decision_inputs = Table(
    "handoff_decision_inputs",
    metadata,
    Column("assignment_id", String(200), primary_key=True),
    Column("roster_version", String(64), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("document", JSON, nullable=False),
)
"""What ``decide`` saw for each assignment it made (``domain/inputs.py``): lead facts, rotation
state, loads, instant and the routing section's digest; the roster by version."""

roster_snapshots = Table(
    "handoff_roster_snapshots",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("document", JSON, nullable=False),
)
"""Each roster (reps and accounts) some decision saw, once per content digest."""
