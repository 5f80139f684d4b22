"""Writing, reading and forgetting archived events, on the caller's connection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.store.engine import dialect_insert
from services.archive.tables import archived_events


@dataclass(frozen=True)
class ArchivedEvent:
    """One input event as it arrived, and when the archive received it."""

    event: CloudEvent
    received_at: datetime


async def archive_event(connection: AsyncConnection, event: CloudEvent, now: datetime) -> bool:
    """Keep ``event`` (received at ``now``); False if its id was archived already."""
    statement = dialect_insert(connection, archived_events).values(
        event_id=event.id,
        event_type=event.type,
        lead_key=event.subject,
        source=event.source,
        event_time=event.time,
        received_at=now,
        payload=event.to_bytes(),
    )
    result = await connection.execute(statement.on_conflict_do_nothing(index_elements=["event_id"]))
    return result.rowcount == 1


async def archived_since(
    connection: AsyncConnection, since: datetime | None = None
) -> Sequence[ArchivedEvent]:
    """Every event received at or after ``since`` (all when None), in order of arrival."""
    query = select(archived_events.c.payload, archived_events.c.received_at).order_by(
        archived_events.c.seq
    )
    if since is not None:
        query = query.where(archived_events.c.received_at >= since)
    rows = await connection.execute(query)
    return [
        ArchivedEvent(CloudEvent.from_bytes(payload), _aware(received_at))
        for payload, received_at in rows
    ]


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


def _aware(value: datetime) -> datetime:
    """SQLite returns stored UTC times naive; PostgreSQL returns them aware."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
