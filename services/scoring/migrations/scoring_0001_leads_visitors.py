"""Scoring: lead state and anonymous visitors (the scoring branch off the runtime's 0001).

Revision ID: scoring_0001
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "scoring_0001"
down_revision = "0001"
branch_labels = ("scoring",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scoring_leads",
        sa.Column("lead_key", sa.String(200), primary_key=True),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("grade", sa.String(1), nullable=True),
        sa.Column("fit_score", sa.Float, nullable=True),
        sa.Column("engagement_score", sa.Float, nullable=True),
        sa.Column("episode", sa.Integer, nullable=False),
        sa.Column("scorecard_version", sa.String(100), nullable=True),
        sa.Column("score", sa.JSON, nullable=True),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "scoring_visitors",
        sa.Column("anonymous_id", sa.String(200), primary_key=True),
        sa.Column("lead_key", sa.String(200), nullable=True),
        sa.Column("activities", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scoring_visitors")
    op.drop_table("scoring_leads")
