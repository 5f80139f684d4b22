"""Scoring: index visitors by last activity, for the retention sweep.

Revision ID: scoring_0002
Revises: scoring_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "scoring_0002"
down_revision = "scoring_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_scoring_visitors_updated_at", "scoring_visitors", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_scoring_visitors_updated_at", table_name="scoring_visitors")
