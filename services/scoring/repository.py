"""Loading and saving scoring state inside the consume loop's transaction.

Rows are read ``FOR UPDATE``: a lead is touched from its own partition and, through a linked
visitor, from the visitor's partition, so two instances can race on it on PostgreSQL. Handlers
always lock the visitor before the lead, so the two paths cannot deadlock each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.schema import Table

from leadrelay.store.engine import dialect_insert
from services.scoring.domain import (
    Activity,
    LeadState,
    Score,
    dump_activities,
    dump_score,
    dump_state,
    load_activities,
    load_state,
)
from services.scoring.tables import leads, visitors


@dataclass(frozen=True)
class StoredLead:
    """A lead's state and the score last stored with it (None before its first scoring)."""

    state: LeadState
    score: dict[str, Any] | None


@dataclass(frozen=True)
class Visitor:
    """An anonymous id: the lead it is linked to, or the activity waiting for that link."""

    anonymous_id: str
    lead_key: str | None
    activities: tuple[Activity, ...]


async def load_lead(
    connection: AsyncConnection, lead_key: str, *, for_update: bool = True
) -> StoredLead | None:
    """The lead's row (locked until the transaction ends unless told not to); None if scoring
    never saw it. The read model passes ``for_update=False``."""
    query = select(leads.c.state, leads.c.score).where(leads.c.lead_key == lead_key)
    row = (await connection.execute(query.with_for_update() if for_update else query)).first()
    return None if row is None else StoredLead(load_state(row.state), row.score)


async def lead_states(connection: AsyncConnection) -> dict[str, LeadState]:
    """Every lead's stored state by lead key, unlocked (replay reads the whole table)."""
    rows = await connection.execute(select(leads.c.lead_key, leads.c.state))
    return {row.lead_key: load_state(row.state) for row in rows}


async def lock_or_create_lead(
    connection: AsyncConnection, lead_key: str, now: datetime
) -> StoredLead:
    """The lead's row, created empty (stage anonymous) first if needed, and locked."""
    stored = await load_lead(connection, lead_key)
    if stored is not None:
        return stored
    empty = LeadState(lead_key=lead_key)
    values = {
        "lead_key": lead_key,
        "stage": empty.stage.value,
        "episode": 0,
        "state": dump_state(empty),
        "updated_at": now,
    }
    await _insert_if_absent(connection, leads, values)
    stored = await load_lead(connection, lead_key)
    assert stored is not None  # inserted above or by a concurrent creator; never deleted
    return stored


async def save_lead(
    connection: AsyncConnection, state: LeadState, score: Score | None, now: datetime
) -> None:
    """Write the state; ``score`` also replaces the stored score (None keeps it)."""
    values: dict[str, Any] = {
        "stage": state.stage.value,
        "episode": state.episode,
        "state": dump_state(state),
        "updated_at": now,
    }
    if score is not None:
        values |= {
            "grade": score.grade,
            "fit_score": score.fit,
            "engagement_score": score.engagement,
            "scorecard_version": score.version,
            "score": dump_score(score),
        }
    await connection.execute(
        update(leads).where(leads.c.lead_key == state.lead_key).values(**values)
    )


async def lock_or_create_visitor(
    connection: AsyncConnection, anonymous_id: str, now: datetime
) -> Visitor:
    """The visitor's row, created unlinked and empty first if needed, and locked."""
    visitor = await _load_visitor(connection, anonymous_id)
    if visitor is not None:
        return visitor
    values = {"anonymous_id": anonymous_id, "activities": [], "updated_at": now}
    await _insert_if_absent(connection, visitors, values)
    visitor = await _load_visitor(connection, anonymous_id)
    # Inserted above or by a concurrent creator. The retention sweep deletes only visitors idle
    # for the whole retention, never one that a transaction has just inserted or locked.
    assert visitor is not None
    return visitor


async def _load_visitor(connection: AsyncConnection, anonymous_id: str) -> Visitor | None:
    query = select(visitors.c.lead_key, visitors.c.activities).where(
        visitors.c.anonymous_id == anonymous_id
    )
    row = (await connection.execute(query.with_for_update())).first()
    return (
        None
        if row is None
        else Visitor(anonymous_id, row.lead_key, load_activities(row.activities))
    )


async def save_visitor(connection: AsyncConnection, visitor: Visitor, now: datetime) -> None:
    await connection.execute(
        update(visitors)
        .where(visitors.c.anonymous_id == visitor.anonymous_id)
        .values(
            lead_key=visitor.lead_key,
            activities=dump_activities(visitor.activities),
            updated_at=now,
        )
    )


async def _insert_if_absent(
    connection: AsyncConnection, table: Table, values: dict[str, Any]
) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING``: a concurrent creator waits, then finds the row."""
    await connection.execute(
        dialect_insert(connection, table).values(**values).on_conflict_do_nothing()
    )


async def forget_idle_visitors(
    connection: AsyncConnection, idle_since: datetime, limit: int
) -> int:
    """Delete up to ``limit`` unidentified visitors not seen since ``idle_since``; how many.

    Linked visitors stay: they hold no activity, only the link that late anonymous activity
    needs to find its lead. Rows another transaction holds are skipped, not waited for.
    """
    idle = (
        select(visitors.c.anonymous_id)
        .where(visitors.c.lead_key.is_(None), visitors.c.updated_at < idle_since)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await connection.execute(delete(visitors).where(visitors.c.anonymous_id.in_(idle)))
    return int(result.rowcount)
