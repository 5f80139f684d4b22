"""Ingest: tag each delivery row with the process that wrote it.

Each replica keeps the replay window in memory and reads only the other replicas' new rows
when it refreshes it.

Revision ID: ingest_0003
Revises: ingest_0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ingest_0003"
down_revision = "ingest_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ingest_seen_deliveries", sa.Column("accepted_by", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_seen_deliveries") as batch:
        batch.drop_column("accepted_by")
