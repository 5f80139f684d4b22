"""Hand-off: why an assignment was released, the rotation pool it took a turn in, and whether
that turn was given back (fair credit).

Revision ID: handoff_0002
Revises: handoff_0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "handoff_0002"
down_revision = "handoff_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("handoff_assignments", sa.Column("released_by", sa.String(32), nullable=True))
    op.add_column("handoff_assignments", sa.Column("pool", sa.String(300), nullable=True))
    op.add_column(
        "handoff_assignments",
        sa.Column("credit_returned", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("handoff_assignments") as batch:
        for column in ("credit_returned", "pool", "released_by"):
            batch.drop_column(column)
