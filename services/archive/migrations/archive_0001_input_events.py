"""Archive: the input events replay needs (the archive branch off the runtime's 0001).

Revision ID: archive_0001
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "archive_0001"
down_revision = "0001"
branch_labels = ("archive",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("event_id", sa.String(200), nullable=False, unique=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("lead_key", sa.String(200), nullable=True),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_archive_events_received_at", "archive_events", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_archive_events_received_at", table_name="archive_events")
    op.drop_table("archive_events")
