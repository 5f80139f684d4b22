"""Ingest's one table: signed deliveries it accepted, remembered for the replay window.

Kept in the shared database so that every replica of ingest sees the same history (each
mirrors it in memory, see ``services.ingest.repository``): a replayed request is refused
whichever instance the load balancer picks, and after a restart.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, String, Table

from leadrelay.store.tables import metadata

seen_deliveries = Table(
    "ingest_seen_deliveries",
    metadata,
    Column("source", String(20), primary_key=True),
    Column("delivery_id", String(300), primary_key=True),
    Column("content_sha256", String(64), nullable=False),
    Column("body_sha256", String(64), nullable=True),
    Column("accepted_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("accepted_by", String(32), nullable=True),
    Index("ix_ingest_seen_deliveries_expires_at", "expires_at"),
)
"""``source`` is the route family (``generic``, ``hubspot``); ``delivery_id`` the sender's
``webhook-id`` (Standard Webhooks) or the signature itself (HubSpot, which sends no id);
``content_sha256`` the digest of the signed content, which tells a replay (same bytes) from a
sender's retry (same id, new timestamp); ``body_sha256`` the digest of the body alone, which
tells that retry from different content under the same id (409; NULL in rows from before it
was kept); ``accepted_by`` the writing process's random tag, so that each replica reads only
the others' rows when it refreshes its window (NULL in rows from before it was kept); rows past
``expires_at`` are pruned on insert."""
