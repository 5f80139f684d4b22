"""SLA monitor: when each completed clock was completed, so a rep's pace reads only recent ones.

The forecaster takes a rep's pace from their clocks completed in the last 30 days; without this
column it had to load every clock the rep ever completed and filter in Python. Clocks completed
before this revision get the time of their last step, read from the document.

Revision ID: sla_0005
Revises: sla_0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "sla_0005"
down_revision = "sla_0004"
branch_labels = None
depends_on = None

BACKFILL_BATCH = 1000


def upgrade() -> None:
    op.add_column("sla_clocks", sa.Column("completed_at", sa.DateTime(timezone=True)))
    op.create_index("ix_sla_clocks_rep_completed", "sla_clocks", ["rep_id", "completed_at"])
    _backfill()


def _backfill() -> None:
    """Completed clocks' ``completed_at`` from their last recorded step, a batch at a time."""
    clocks = sa.table(
        "sla_clocks",
        sa.column("clock_id", sa.String),
        sa.column("state", sa.String),
        sa.column("completed_at", sa.DateTime(timezone=True)),
        sa.column("document", sa.JSON),
    )
    bind = op.get_bind()
    after = ""
    while rows := bind.execute(
        sa.select(clocks.c.clock_id, clocks.c.document)
        .where(clocks.c.state == "completed", clocks.c.clock_id > after)
        .order_by(clocks.c.clock_id)
        .limit(BACKFILL_BATCH)
    ).all():
        for clock_id, document in rows:
            steps = document.get("steps_taken") or []
            at = steps[-1][1] if steps else document["due_at"]
            bind.execute(
                sa.update(clocks)
                .where(clocks.c.clock_id == clock_id)
                .values(completed_at=datetime.fromisoformat(at))
            )
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_sla_clocks_rep_completed", table_name="sla_clocks")
    op.drop_column("sla_clocks", "completed_at")
