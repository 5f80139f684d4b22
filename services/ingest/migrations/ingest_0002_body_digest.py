"""Ingest: keep the body's digest too, to tell a sender's retry from a reused webhook-id.

Revision ID: ingest_0002
Revises: ingest_0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ingest_0002"
down_revision = "ingest_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ingest_seen_deliveries", sa.Column("body_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_seen_deliveries") as batch:
        batch.drop_column("body_sha256")
