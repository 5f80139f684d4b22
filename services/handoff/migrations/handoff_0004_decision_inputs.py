"""Hand-off: the inputs each routing decision saw, and the roster versions they name.

Revision ID: handoff_0004
Revises: handoff_0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "handoff_0004"
down_revision = "handoff_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handoff_decision_inputs",
        sa.Column("assignment_id", sa.String(200), primary_key=True),
        sa.Column("roster_version", sa.String(64), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
    )
    op.create_table(
        "handoff_roster_snapshots",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("document", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("handoff_roster_snapshots")
    op.drop_table("handoff_decision_inputs")
