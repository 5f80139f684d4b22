"""Outbox rows carry their relay bucket, and on PostgreSQL an insert notifies the relays.

The bucket (a fixed hash of the key, :func:`leadrelay.store.tables.relay_bucket`) lets several
relays publish at once, each holding the buckets it publishes, instead of one lock for all. Rows
still unsent when this runs get their key's bucket too, so a key's old and new rows stay in one.
On PostgreSQL a statement trigger issues ``NOTIFY leadrelay_outbox`` inside every transaction that
inserts outbox rows; PostgreSQL delivers it at commit, so relays in other processes wake at once.

Revision ID: runtime_0003
Revises: runtime_0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from leadrelay.store.tables import relay_bucket

revision = "runtime_0003"
down_revision = "runtime_0002"
branch_labels = None
depends_on = None

UNSENT = sa.text("sent_at IS NULL")
NOTIFY_FUNCTION = """
CREATE FUNCTION leadrelay_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('leadrelay_outbox', '');
    RETURN NULL;
END
$$
"""
NOTIFY_TRIGGER = """
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
FOR EACH STATEMENT EXECUTE FUNCTION leadrelay_outbox_notify()
"""


def upgrade() -> None:
    op.add_column(
        "outbox", sa.Column("relay_bucket", sa.SmallInteger, nullable=False, server_default="0")
    )
    _bucket_unsent_rows()
    op.create_index(
        "ix_outbox_unsent_bucket",
        "outbox",
        ["relay_bucket", "id"],
        postgresql_where=UNSENT,
        sqlite_where=UNSENT,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
        op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER outbox_notify ON outbox")
        op.execute("DROP FUNCTION leadrelay_outbox_notify()")
    op.drop_index("ix_outbox_unsent_bucket", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("relay_bucket")


def _bucket_unsent_rows() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, message_key, event_id FROM outbox WHERE sent_at IS NULL")
    ).all()
    if rows:
        bind.execute(
            sa.text("UPDATE outbox SET relay_bucket = :bucket WHERE id = :id"),
            [{"id": row.id, "bucket": relay_bucket(row.message_key, row.event_id)} for row in rows],
        )
