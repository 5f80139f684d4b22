"""The SLA monitor's clocks.

Revision ID: sla_0001
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sla_0001"
down_revision = "0001"
branch_labels = ("sla_monitor",)
depends_on = None

_INDEXES = {
    "ix_sla_clocks_lead_key": ["lead_key"],
    "ix_sla_clocks_assignment_id": ["assignment_id"],
    # the firing loop's ORDER BY ... LIMIT must read the index in order, not sort every due clock
    "ix_sla_clocks_next_fire_at": ["next_fire_at", "clock_id"],
    "ix_sla_clocks_state": ["state"],
}


def upgrade() -> None:
    op.create_table(
        "sla_clocks",
        sa.Column("clock_id", sa.String(64), primary_key=True),
        sa.Column("lead_key", sa.String(200), nullable=False),
        sa.Column("assignment_id", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("team", sa.String(256), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("document", sa.JSON, nullable=False),
    )
    for name, columns in _INDEXES.items():
        op.create_index(name, "sla_clocks", columns)


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="sla_clocks")
    op.drop_table("sla_clocks")
