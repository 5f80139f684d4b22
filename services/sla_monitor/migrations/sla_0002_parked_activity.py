"""SLA monitor: sales activity parked until the assignment it is about arrives.

Revision ID: sla_0002
Revises: sla_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sla_0002"
down_revision = "sla_0001"
branch_labels = None
depends_on = None

_INDEXES = {
    "ix_sla_parked_activity_lead_key": ["lead_key"],
    "ix_sla_parked_activity_parked_at": ["parked_at"],
}


def upgrade() -> None:
    op.create_table(
        "sla_parked_activity",
        sa.Column("event_id", sa.String(300), primary_key=True),
        sa.Column("lead_key", sa.String(200), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
    )
    for name, columns in _INDEXES.items():
        op.create_index(name, "sla_parked_activity", columns)


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="sla_parked_activity")
    op.drop_table("sla_parked_activity")
