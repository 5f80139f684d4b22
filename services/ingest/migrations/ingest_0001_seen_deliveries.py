"""Ingest: signed deliveries accepted within the replay window.

Revision ID: ingest_0001
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ingest_0001"
down_revision = "0001"
branch_labels = ("ingest",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_seen_deliveries",
        sa.Column("source", sa.String(20), primary_key=True),
        sa.Column("delivery_id", sa.String(300), primary_key=True),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_ingest_seen_deliveries_expires_at", "ingest_seen_deliveries", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_ingest_seen_deliveries_expires_at", table_name="ingest_seen_deliveries")
    op.drop_table("ingest_seen_deliveries")
