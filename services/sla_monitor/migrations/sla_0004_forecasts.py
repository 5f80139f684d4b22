"""SLA monitor: the clocks a forecast found at risk, so each is announced (and acted on) once.

Revision ID: sla_0004
Revises: sla_0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sla_0004"
down_revision = "sla_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sla_forecasts",
        sa.Column("clock_id", sa.String(64), primary_key=True),
        sa.Column("lead_key", sa.String(200), nullable=False),
        sa.Column("rep_id", sa.String(200), nullable=False),
        sa.Column("forecast_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reassigned", sa.Boolean, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sla_forecasts")
