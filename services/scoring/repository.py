"""Loading and saving scoring state inside the consume loop's transaction, a batch at a time.

Rows are read ``FOR UPDATE``: a lead is touched from its own partition and, through a linked
visitor, from the visitor's partition, so two instances can race on it on PostgreSQL. A batch
locks its visitors before its leads, each in key order, so two batches cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.schema import Table

from leadrelay.store.engine import BuiltOnce, dialect_insert, encoded_json
from services.scoring.domain import (
    Activity,
    LeadState,
    Score,
    Stage,
    dump_activities,
    dump_score,
    load_activities,
    load_state,
    state_json,
)
from services.scoring.tables import leads, visitors


def _key(table: Table) -> str:
    return str(table.primary_key.columns.values()[0].name)


def _locking_select(table: Table) -> Any:
    key = table.primary_key.columns[_key(table)]
    return (
        select(table)
        .where(key.in_(bindparam("keys", expanding=True)))
        .order_by(key)
        .with_for_update()
    )


def _create_missing(table: Table) -> BuiltOnce[Any]:
    return BuiltOnce(lambda connection: dialect_insert(connection, table).on_conflict_do_nothing())


def _upsert_every_column(table: Table) -> BuiltOnce[Any]:
    """``INSERT ... ON CONFLICT DO UPDATE`` of every column: a batch writes whole rows."""

    def build(connection: AsyncConnection) -> Any:
        insert = dialect_insert(connection, table)
        update = {c.name: insert.excluded[c.name] for c in table.columns if not c.primary_key}
        return insert.on_conflict_do_update(index_elements=[_key(table)], set_=update)

    return BuiltOnce(build)


# Built once (see leadrelay.store.engine.BuiltOnce): every consumer batch runs them.
_LOCKING_SELECT = {table: _locking_select(table) for table in (leads, visitors)}
_CREATE_MISSING = {table: _create_missing(table) for table in (leads, visitors)}
_UPSERT = {table: _upsert_every_column(table) for table in (leads, visitors)}


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


async def load_lead(connection: AsyncConnection, lead_key: str) -> StoredLead | None:
    """The lead's row, unlocked (the read model's view; a batch locks its rows with
    :func:`lock_rows`); None if scoring never saw it."""
    query = select(leads.c.state, leads.c.score).where(leads.c.lead_key == lead_key)
    row = (await connection.execute(query)).first()
    return None if row is None else StoredLead(load_state(row.state), row.score)


async def lead_states(connection: AsyncConnection) -> dict[str, LeadState]:
    """Every lead's stored state by lead key, unlocked (replay reads the whole table)."""
    rows = await connection.execute(select(leads.c.lead_key, leads.c.state))
    return {row.lead_key: load_state(row.state) for row in rows}


class Rows:
    """The lead and visitor rows one batch touches: loaded locked at once, changed in memory by
    the batch's events in order, written back at once by :func:`write_rows`."""

    def __init__(self, leads: dict[str, StoredLead], visitors: dict[str, Visitor]) -> None:
        self._leads = leads
        self._visitors = visitors
        self._changed_leads: set[str] = set()
        self._changed_visitors: set[str] = set()

    def lead(self, lead_key: str) -> StoredLead:
        """The lead (created empty, stage anonymous, if the batch did not load it)."""
        stored = self._leads.get(lead_key)
        if stored is None:
            stored = self._leads[lead_key] = StoredLead(LeadState(lead_key=lead_key), None)
            self._changed_leads.add(lead_key)
        return stored

    def known_lead(self, lead_key: str) -> StoredLead | None:
        """The lead, or None if scoring never saw it (it is not created)."""
        return self._leads.get(lead_key)

    def save_lead(self, state: LeadState, score: Score | None) -> None:
        """Replace the state; ``score`` also replaces the stored score (None keeps it)."""
        old = self.lead(state.lead_key)
        self._leads[state.lead_key] = StoredLead(
            state, old.score if score is None else dump_score(score)
        )
        self._changed_leads.add(state.lead_key)

    def visitor(self, anonymous_id: str) -> Visitor:
        """The visitor (created unlinked and empty if the batch did not load it)."""
        visitor = self._visitors.get(anonymous_id)
        if visitor is None:
            visitor = self._visitors[anonymous_id] = Visitor(anonymous_id, None, ())
            self._changed_visitors.add(anonymous_id)
        return visitor

    def save_visitor(self, visitor: Visitor) -> None:
        self._visitors[visitor.anonymous_id] = visitor
        self._changed_visitors.add(visitor.anonymous_id)

    def changed_leads(self) -> list[StoredLead]:
        return [self._leads[key] for key in sorted(self._changed_leads)]

    def changed_visitors(self) -> list[Visitor]:
        return [self._visitors[key] for key in sorted(self._changed_visitors)]


LeadKeys = Callable[[Mapping[str, Visitor]], tuple[set[str], set[str]]]
"""Given the batch's visitors: the lead keys to create if absent, and those only to load."""


async def lock_rows(
    connection: AsyncConnection, anonymous_ids: Collection[str], lead_keys: LeadKeys, now: datetime
) -> Rows:
    """Every visitor in ``anonymous_ids`` (created if absent), then the leads ``lead_keys``
    names for them, each table with one locking query (two more where rows must be created).

    Visitors are locked before leads, and each table's rows in key order, so batches on two
    instances touching the same rows wait for each other instead of deadlocking.
    """
    empty_visitor: dict[str, Any] = {"lead_key": None, "activities": [], "updated_at": now}
    visitor_rows = await _lock_all(
        connection, visitors, set(anonymous_ids), set(anonymous_ids), empty_visitor
    )
    by_id = {
        row.anonymous_id: Visitor(row.anonymous_id, row.lead_key, load_activities(row.activities))
        for row in visitor_rows
    }
    creating, loading = lead_keys(by_id)
    empty_lead = {"stage": Stage.ANONYMOUS.value, "episode": 0, "updated_at": now}
    lead_rows = await _lock_all(connection, leads, creating | loading, creating, empty_lead)
    by_key = {row.lead_key: StoredLead(load_state(row.state), row.score) for row in lead_rows}
    return Rows(by_key, by_id)


async def _lock_all(
    connection: AsyncConnection,
    table: Table,
    keys: set[str],
    creating: set[str],
    empty: dict[str, Any],
) -> list[Row[Any]]:
    """The rows of ``keys`` locked in key order, those of ``creating`` inserted first if absent
    (``INSERT ... ON CONFLICT DO NOTHING``: a concurrent creator waits, then finds the row)."""
    if not keys:
        return []
    key = _key(table)
    found = await _select_locked(connection, table, keys)
    missing = sorted(creating - {getattr(row, key) for row in found})
    if missing:
        values = [{key: k, **_empty_state(table, k, empty)} for k in missing]
        await connection.execute(_CREATE_MISSING[table](connection), values)
        found += await _select_locked(connection, table, set(missing))
    return found


def _empty_state(table: Table, key: str, empty: dict[str, Any]) -> dict[str, Any]:
    """A new row's columns; a lead's ``state`` is the empty state of its key."""
    if table is leads:
        return {**empty, "state": encoded_json(state_json(LeadState(lead_key=key)))}
    return empty


async def _select_locked(
    connection: AsyncConnection, table: Table, keys: set[str]
) -> list[Row[Any]]:
    return list(await connection.execute(_LOCKING_SELECT[table], {"keys": sorted(keys)}))


async def write_rows(connection: AsyncConnection, rows: Rows, now: datetime) -> None:
    """Write the changed leads, then the changed visitors, each with one multi-row upsert."""
    changed = rows.changed_leads()
    if changed:
        await _upsert(connection, leads, [_lead_values(stored, now) for stored in changed])
    visited = rows.changed_visitors()
    if visited:
        values = [
            {
                "anonymous_id": v.anonymous_id,
                "lead_key": v.lead_key,
                "activities": dump_activities(v.activities),
                "updated_at": now,
            }
            for v in visited
        ]
        await _upsert(connection, visitors, values)


def _lead_values(stored: StoredLead, now: datetime) -> dict[str, Any]:
    """A lead's columns: the state, and the flat score columns from the stored score."""
    state, score = stored.state, stored.score
    return {
        "lead_key": state.lead_key,
        "stage": state.stage.value,
        "episode": state.episode,
        "state": encoded_json(state_json(state)),
        "updated_at": now,
        "grade": None if score is None else score["grade"],
        "fit_score": None if score is None else score["fit"],
        "engagement_score": None if score is None else score["engagement"],
        "scorecard_version": None if score is None else score["version"],
        "score": score,
    }


async def _upsert(connection: AsyncConnection, table: Table, values: list[dict[str, Any]]) -> None:
    await connection.execute(_UPSERT[table](connection), values)


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
