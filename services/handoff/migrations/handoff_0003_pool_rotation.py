"""Hand-off: round-robin credits in one row per pool, and a roster version.

Decisions of different pools no longer wait on one routing-state row: the one row's credits
move into ``handoff_rotation``, one row per pool, and the old table goes. Every roster change
bumps ``handoff_roster_version``, so processes keep the roster in memory. Each rep gets its load
row now, so a decision can lock the loads it may charge.

Revision ID: handoff_0003
Revises: handoff_0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "handoff_0003"
down_revision = "handoff_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    now = datetime.now(UTC)
    rotation = op.create_table(
        "handoff_rotation",
        sa.Column("pool", sa.String(300), primary_key=True),
        sa.Column("credits", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    roster_version = op.create_table(
        "handoff_roster_version",
        sa.Column("id", sa.String(50), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    connection = op.get_bind()
    old = sa.table("handoff_routing_state", sa.column("state", sa.JSON))
    for (state,) in connection.execute(sa.select(old.c.state)):
        pools: dict[str, Any] = (state or {}).get("pools", {})
        rows = [
            {"pool": pool, "credits": credits, "version": 0, "updated_at": now}
            for pool, credits in pools.items()
        ]
        if rows:
            op.bulk_insert(rotation, rows)
    op.bulk_insert(roster_version, [{"id": "roster", "version": 1, "updated_at": now}])
    op.execute(
        sa.text(
            "INSERT INTO handoff_rep_load (rep_id, day, assigned_on_day, open_leads, updated_at)"
            " SELECT id, NULL, 0, 0, updated_at FROM handoff_reps"
            " WHERE id NOT IN (SELECT rep_id FROM handoff_rep_load)"
        )
    )
    op.drop_table("handoff_routing_state")


def downgrade() -> None:
    op.create_table(
        "handoff_routing_state",
        sa.Column("id", sa.String(50), primary_key=True),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.drop_table("handoff_roster_version")
    op.drop_table("handoff_rotation")
