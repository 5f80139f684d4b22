"""Index the inbox by processing time, for the retention sweep.

Revision ID: runtime_0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "runtime_0002"
down_revision = "0001"
branch_labels = ("runtime",)
depends_on = None


def upgrade() -> None:
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])


def downgrade() -> None:
    op.drop_index("ix_inbox_processed_at", table_name="inbox")
