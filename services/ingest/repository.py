"""Signed deliveries already accepted: refuses replays, recognises a sender's retries.

Standard Webhooks gives each message a ``webhook-id`` that stays the same when the sender
retries, while the retry carries a fresh timestamp and therefore a fresh signature. So:

* same id, same signed content, after a ``202``: somebody replays a captured request -> 401;
* same id, same body, new timestamp, after a ``202``: the sender never saw our 202 and
  retries -> ``202`` again, nothing produced a second time;
* same id, different body, after a ``202``: a different event under a used id (a sender bug,
  or two senders sharing the ``generic`` namespace picking the same id) -> ``409``, so the
  sender learns of it instead of the event being dropped as a "retry";
* a delivery answered ``503`` (or 4xx) was never recorded, so its retry is processed afresh.

A row is only needed while a replay could pass the timestamp check, so it expires one
tolerance after the signing time; later replays are refused as stale anyway. HubSpot sends
no delivery id, so its signature stands in for one (a retry is signed anew and is simply
processed again; its stable event ids let consumers drop the copy).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay.store.engine import dialect_insert
from services.ingest.domain.signatures import Delivery, SignatureError
from services.ingest.tables import seen_deliveries


class Seen(enum.Enum):
    """What the history says about a delivery."""

    NEW = "new"
    RETRY_OF_ACCEPTED = "retry_of_accepted"


class DeliveryConflict(Exception):
    """The delivery id was already accepted for a different body."""


class SeenDeliveries:
    """The ``ingest_seen_deliveries`` table, shared by every ingest replica."""

    def __init__(self, engine: AsyncEngine, tolerance: timedelta) -> None:
        self._engine = engine
        self._tolerance = tolerance

    async def check(self, source: str, delivery: Delivery) -> Seen:
        """NEW, or a retry of an accepted delivery.

        Raises ``SignatureError("replayed")`` for a replay and :class:`DeliveryConflict` for
        a different body under an accepted id.
        """
        query = select(seen_deliveries.c.content_sha256, seen_deliveries.c.body_sha256).where(
            seen_deliveries.c.source == source,
            seen_deliveries.c.delivery_id == delivery.delivery_id,
        )
        async with self._engine.connect() as connection:
            stored = (await connection.execute(query)).first()
        if stored is None:
            return Seen.NEW
        if stored.content_sha256 == delivery.content_sha256:
            raise SignatureError("replayed", "this signed request was already accepted")
        # a row written before body digests were kept (NULL) is treated as a retry, as it was
        if stored.body_sha256 not in (None, delivery.body_sha256):
            raise DeliveryConflict
        return Seen.RETRY_OF_ACCEPTED

    async def remember(self, source: str, delivery: Delivery, now: datetime) -> None:
        """Record an accepted delivery (a concurrent twin wins silently); prune expired rows."""
        values = {
            "source": source,
            "delivery_id": delivery.delivery_id,
            "content_sha256": delivery.content_sha256,
            "body_sha256": delivery.body_sha256,
            "accepted_at": now,
            "expires_at": max(now, delivery.signed_at) + self._tolerance,
        }
        async with self._engine.begin() as connection:
            await connection.execute(
                dialect_insert(connection, seen_deliveries)
                .values(**values)
                .on_conflict_do_nothing()
            )
            await connection.execute(
                delete(seen_deliveries).where(seen_deliveries.c.expires_at < now)
            )
