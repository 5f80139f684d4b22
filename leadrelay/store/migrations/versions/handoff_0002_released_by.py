"""Hand-off: why an assignment was released (the rep's outcome, or ``reassigned``).

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


def downgrade() -> None:
    with op.batch_alter_table("handoff_assignments") as batch:
        batch.drop_column("released_by")
