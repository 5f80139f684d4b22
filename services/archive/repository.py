"""Writing, reading and forgetting archived events, on the caller's connection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.store.engine import BuiltOnce, dialect_insert
from leadrelay.store.tables import inbox
from leadrelay.store.unit_of_work import stored_utc
from services.archive.tables import archived_events

_KEEP_NEW = BuiltOnce(
    lambda connection: (
        dialect_insert(connection, archived_events)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(archived_events.c.event_id)
    )
)
"""Built once (see leadrelay.store.engine.BuiltOnce): every consumer batch runs it."""


@dataclass(frozen=True)
class ArchivedEvent:
    """One input event as it arrived, and when the archive received it."""

    event: CloudEvent
    received_at: datetime


async def archive_events(
    connection: AsyncConnection, events: Sequence[CloudEvent], now: datetime
) -> list[CloudEvent]:
    """Keep ``events`` (received at ``now``, in this order) with one statement; the ones that
    were not archived already."""
    if not events:
        return []
    rows = [
        {
            "event_id": event.id,
            "event_type": event.type,
            "lead_key": event.subject,
            "source": event.source,
            "event_time": event.time,
            "received_at": now,
            "payload": event.to_bytes(),
        }
        for event in events
    ]
    kept = set((await connection.execute(_KEEP_NEW(connection), rows)).scalars())
    return [event for event in events if event.id in kept]


async def archived_since(
    connection: AsyncConnection, since: datetime | None = None, *, as_seen_by: str | None = None
) -> Sequence[ArchivedEvent]:
    """Every event received at or after ``since`` (all when None), in order of arrival.

    With ``as_seen_by`` (a consumer group), each event is ordered and timed as that consumer
    processed it, from its inbox row: another group reads the partitions in another
    interleaving and at other moments. ``received_at`` is then that processing time; events
    the consumer has no inbox row for keep the archive's own receipt time.
    """
    processed = (
        select(inbox.c.event_id, inbox.c.processed_at)
        .where(inbox.c.consumer == (as_seen_by or ""))
        .subquery()
    )
    when = func.coalesce(processed.c.processed_at, archived_events.c.received_at)
    query = (
        select(archived_events.c.payload, when.label("at"))
        .select_from(
            archived_events.outerjoin(processed, processed.c.event_id == archived_events.c.event_id)
        )
        .order_by(when, archived_events.c.seq)
    )
    if since is not None:
        query = query.where(archived_events.c.received_at >= since)
    rows = await connection.execute(query)
    return [ArchivedEvent(CloudEvent.from_bytes(payload), stored_utc(at)) for payload, at in rows]


async def forget_received_before(connection: AsyncConnection, cutoff: datetime, limit: int) -> int:
    """Delete at most ``limit`` of the oldest events received before ``cutoff``; how many."""
    oldest = (
        select(archived_events.c.seq)
        .where(archived_events.c.received_at < cutoff)
        .order_by(archived_events.c.seq)
        .limit(limit)
    )
    result = await connection.execute(
        delete(archived_events).where(archived_events.c.seq.in_(oldest.scalar_subquery()))
    )
    return int(result.rowcount)
