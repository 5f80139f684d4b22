"""Hand-off: roster, routing state, rep load, lead context and assignments (handoff branch).

Revision ID: handoff_0001
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "handoff_0001"
down_revision = "0001"
branch_labels = ("handoff",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handoff_reps",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "handoff_accounts",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "handoff_routing_state",
        sa.Column("id", sa.String(50), primary_key=True),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "handoff_rep_load",
        sa.Column("rep_id", sa.String(128), primary_key=True),
        sa.Column("day", sa.Date, nullable=True),
        sa.Column("assigned_on_day", sa.Integer, nullable=False),
        sa.Column("open_leads", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "handoff_lead_context",
        sa.Column("lead_key", sa.String(200), nullable=False),
        sa.Column("episode", sa.Integer, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("lead_key", "episode", name="pk_handoff_lead_context"),
    )
    op.create_table(
        "handoff_assignments",
        sa.Column("assignment_id", sa.String(200), primary_key=True),
        sa.Column("lead_key", sa.String(200), nullable=False),
        sa.Column("episode", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("rep_id", sa.String(128), nullable=True),
        sa.Column("fallback_queue", sa.String(200), nullable=True),
        sa.Column("route", sa.String(32), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("team", sa.String(256), nullable=True),
        sa.Column("trace", sa.JSON, nullable=False),
        sa.Column("event", sa.JSON, nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint(
            "lead_key", "episode", "attempt", name="uq_handoff_assignments_attempt"
        ),
    )
    op.create_index("ix_handoff_assignments_rep", "handoff_assignments", ["rep_id"])


def downgrade() -> None:
    op.drop_index("ix_handoff_assignments_rep", table_name="handoff_assignments")
    op.drop_table("handoff_assignments")
    op.drop_table("handoff_lead_context")
    op.drop_table("handoff_rep_load")
    op.drop_table("handoff_routing_state")
    op.drop_table("handoff_accounts")
    op.drop_table("handoff_reps")
