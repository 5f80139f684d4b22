"""SLA monitor: its own copy of the roster (from ``rep_updated``), and clocks findable by rep.

Revision ID: sla_0003
Revises: sla_0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sla_0003"
down_revision = "sla_0002"
branch_labels = None
depends_on = None

_OPEN = ("running", "warned", "breached")


def upgrade() -> None:
    op.create_table(
        "sla_reps",
        sa.Column("rep_id", sa.String(200), primary_key=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
    )
    op.add_column("sla_clocks", sa.Column("rep_id", sa.String(200), nullable=True))
    op.create_index("ix_sla_clocks_rep_id", "sla_clocks", ["rep_id"])
    _backfill_rep_ids()


def _backfill_rep_ids() -> None:
    """Open clocks learn their rep from their document (closed ones are never looked up)."""
    clocks = sa.table(
        "sla_clocks",
        sa.column("clock_id", sa.String),
        sa.column("state", sa.String),
        sa.column("rep_id", sa.String),
        sa.column("document", sa.JSON),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(clocks.c.clock_id, clocks.c.document).where(clocks.c.state.in_(_OPEN))
    ).all()
    for clock_id, document in rows:
        bind.execute(
            sa.update(clocks).where(clocks.c.clock_id == clock_id).values(rep_id=document["rep_id"])
        )


def downgrade() -> None:
    op.drop_index("ix_sla_clocks_rep_id", table_name="sla_clocks")
    with op.batch_alter_table("sla_clocks") as batch:
        batch.drop_column("rep_id")
    op.drop_table("sla_reps")
