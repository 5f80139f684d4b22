"""Reporting: the facts it consumed from the public topics.

Revision ID: reporting_0001
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "reporting_0001"
down_revision = "0001"
branch_labels = ("reporting",)
depends_on = None

_INDEXES = {"ix_reporting_facts_at": ["at"], "ix_reporting_facts_lead_key": ["lead_key"]}


def upgrade() -> None:
    op.create_table(
        "reporting_facts",
        sa.Column("event_id", sa.String(300), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("lead_key", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
    )
    for name, columns in _INDEXES.items():
        op.create_index(name, "reporting_facts", columns)


def downgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, "reporting_facts")
    op.drop_table("reporting_facts")
