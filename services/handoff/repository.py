"""Hand-off's state in the database: the roster, routing state, rep loads, lead contexts and
assignments.

Every function works on the handler's connection, inside the consume loop's transaction, so the
state change, the assignment row, the inbox row and the outbox row commit together.

The roster holds reps and accounts as validated domain documents. Seeding: every rep and account of
the definitions file that the database does not hold yet is inserted (when the service starts, and
again whenever a read finds one missing). An entry already in the database is never overwritten from
the file: after the first seed, ``PUT /v1/reps/{id}`` and ``PUT /v1/accounts/{id}`` own it, and
routing reads the database on every decision, so an edit applies to the next lead without a restart.
Removing an entry from the file does not remove it from the database: set the rep ``active: false``
(or drop the account's owner) through the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Table, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.contracts.events import LeadSalesReady
from leadrelay.store.engine import dialect_insert
from services.handoff.domain import Account, Rep, RepLoad, RosterConfig, RoutingState
from services.handoff.domain.inputs import DecisionInputs, RosterSnapshot
from services.handoff.tables import (
    ROUTING_STATE_ID,
    accounts,
    assignments,
    decision_inputs,
    lead_context,
    rep_load,
    reps,
    roster_snapshots,
    routing_state,
)


class RoutingStateConflictError(RuntimeError):
    """The routing state changed under a decision that held its lock: a bug, never routine."""


@dataclass(frozen=True)
class StoredAssignment:
    """One row of ``handoff_assignments``; ``event`` is the published ``LeadAssigned`` data."""

    assignment_id: str
    lead_key: str
    episode: int
    attempt: int
    rep_id: str | None
    fallback_queue: str | None
    route: str
    role: str
    team: str | None
    trace: dict[str, Any]
    event: dict[str, Any]
    assigned_at: datetime
    released_at: datetime | None = None
    released_by: str | None = None
    """The sales outcome that released it (``rejected``, ``won``...) or ``reassigned``."""
    pool: str | None = None
    """The rotation pool it took a turn in (None: account owner or fallback, no turn)."""
    credit_returned: bool = False
    """Whether that turn was given back to the rep (routing's ``credit`` section)."""


async def lock_routing_state(connection: AsyncConnection, now: datetime) -> RoutingState:
    """Lock and read the one routing-state row, creating it on first use.

    Taken before anything else a decision reads, so decisions of several instances run one at
    a time (PostgreSQL: ``FOR UPDATE``; SQLite: its single writer) and each sees what the previous
    one committed: credits, loads and assignments alike.
    """
    row = await _select_state(connection)
    if row is None:
        initial = RoutingState()
        await connection.execute(
            dialect_insert(connection, routing_state)
            .values(
                id=ROUTING_STATE_ID,
                state=initial.model_dump(mode="json"),
                version=initial.version,
                updated_at=now,
            )
            .on_conflict_do_nothing()
        )
        row = await _select_state(connection)
    if row is None:
        raise RoutingStateConflictError("the routing-state row vanished after its insert")
    return RoutingState.model_validate(row)


async def save_routing_state(
    connection: AsyncConnection, expected_version: int, state: RoutingState, now: datetime
) -> None:
    """Write ``state`` if the stored version is still ``expected_version`` (compare-and-set)."""
    result = await connection.execute(
        update(routing_state)
        .where(routing_state.c.id == ROUTING_STATE_ID, routing_state.c.version == expected_version)
        .values(state=state.model_dump(mode="json"), version=state.version, updated_at=now)
    )
    if result.rowcount != 1:
        raise RoutingStateConflictError(
            f"routing state is no longer at version {expected_version}; the decision is retried"
        )


async def load_loads(connection: AsyncConnection) -> dict[str, RepLoad]:
    result = await connection.execute(
        select(rep_load.c.rep_id, rep_load.c.day, rep_load.c.assigned_on_day, rep_load.c.open_leads)
    )
    return {row.rep_id: RepLoad.model_validate(row._asdict()) for row in result}


async def save_load(connection: AsyncConnection, load: RepLoad, now: datetime) -> None:
    values = {**load.model_dump(), "updated_at": now}
    statement = dialect_insert(connection, rep_load).values(values)
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[rep_load.c.rep_id],
            set_={key: value for key, value in values.items() if key != "rep_id"},
        )
    )


async def release_lead(connection: AsyncConnection, rep_id: str, now: datetime) -> None:
    """The lead left ``rep_id``: one fewer open lead counted against its capacity."""
    await connection.execute(
        update(rep_load)
        .where(rep_load.c.rep_id == rep_id)
        .values(
            open_leads=case((rep_load.c.open_leads > 0, rep_load.c.open_leads - 1), else_=0),
            updated_at=now,
        )
    )


async def save_lead_context(
    connection: AsyncConnection, ready: LeadSalesReady, now: datetime
) -> None:
    """Keep the sales-ready payload of the episode: reassignments route and publish from it."""
    await connection.execute(
        dialect_insert(connection, lead_context)
        .values(
            lead_key=ready.lead_key,
            episode=ready.episode,
            payload=ready.model_dump(mode="json", exclude_none=True),
            received_at=now,
        )
        .on_conflict_do_nothing()
    )


async def load_lead_context(
    connection: AsyncConnection, lead_key: str, episode: int
) -> LeadSalesReady | None:
    result = await connection.execute(
        select(lead_context.c.payload).where(
            lead_context.c.lead_key == lead_key, lead_context.c.episode == episode
        )
    )
    payload = result.scalar_one_or_none()
    return None if payload is None else LeadSalesReady.model_validate(payload)


async def lead_assignments(connection: AsyncConnection, lead_key: str) -> list[StoredAssignment]:
    """Every assignment of the lead, oldest first (by episode, then attempt)."""
    result = await connection.execute(
        select(assignments)
        .where(assignments.c.lead_key == lead_key)
        .order_by(assignments.c.episode, assignments.c.attempt)
    )
    return [_assignment(dict(row._mapping)) for row in result]


async def insert_assignment(connection: AsyncConnection, assignment: StoredAssignment) -> None:
    """Record the assignment; a second one for the same attempt fails on the unique constraint."""
    await connection.execute(assignments.insert().values(**vars(assignment)))


async def mark_released(
    connection: AsyncConnection, assignment_id: str, now: datetime, by: str
) -> None:
    """The rep no longer holds this assignment's lead (``by``: the outcome or ``reassigned``);
    it never frees capacity twice."""
    await connection.execute(
        update(assignments)
        .where(assignments.c.assignment_id == assignment_id)
        .values(released_at=now, released_by=by)
    )


async def mark_credit_returned(connection: AsyncConnection, assignment_id: str) -> None:
    """The turn this assignment cost its rep was given back."""
    await connection.execute(
        update(assignments)
        .where(assignments.c.assignment_id == assignment_id)
        .values(credit_returned=True)
    )


async def rotation_counts(
    connection: AsyncConnection, since: datetime
) -> dict[str, dict[str, int]]:
    """Leads each rep got from each pool's rotation since ``since`` (turns given back aside):
    ``{pool: {rep_id: count}}``."""
    result = await connection.execute(
        select(assignments.c.pool, assignments.c.rep_id, func.count())
        .where(
            assignments.c.assigned_at >= since,
            assignments.c.pool.is_not(None),
            assignments.c.credit_returned.is_(False),
        )
        .group_by(assignments.c.pool, assignments.c.rep_id)
    )
    counts: dict[str, dict[str, int]] = {}
    for pool, rep_id, count in result.all():
        counts.setdefault(pool, {})[rep_id] = int(count)
    return counts


async def queued(
    connection: AsyncConnection, queue: str | None = None, limit: int | None = None
) -> list[StoredAssignment]:
    """Leads waiting in a fallback queue with nobody on them (their latest assignment went to
    the queue without an owner), oldest first; ``queue`` narrows to one queue."""
    later = assignments.alias("later")
    superseded = (
        select(later.c.assignment_id)
        .where(
            later.c.lead_key == assignments.c.lead_key,
            (later.c.episode > assignments.c.episode)
            | (
                (later.c.episode == assignments.c.episode)
                & (later.c.attempt > assignments.c.attempt)
            ),
        )
        .exists()
    )
    query = (
        select(assignments)
        .where(
            assignments.c.fallback_queue.is_not(None),
            assignments.c.rep_id.is_(None),
            assignments.c.released_at.is_(None),
            ~superseded,
        )
        .order_by(assignments.c.assigned_at, assignments.c.assignment_id)
        .limit(limit)
    )
    if queue is not None:
        query = query.where(assignments.c.fallback_queue == queue)
    result = await connection.execute(query)
    return [_assignment(dict(row._mapping)) for row in result]


def _assignment(values: dict[str, Any]) -> StoredAssignment:
    values["assigned_at"] = as_utc(values["assigned_at"])
    if values["released_at"] is not None:
        values["released_at"] = as_utc(values["released_at"])
    return StoredAssignment(**values)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def _select_state(connection: AsyncConnection) -> dict[str, Any] | None:
    result = await connection.execute(
        select(routing_state.c.state)
        .where(routing_state.c.id == ROUTING_STATE_ID)
        .with_for_update()
    )
    state: dict[str, Any] | None = result.scalar_one_or_none()
    return state


_M = TypeVar("_M", bound=BaseModel)
_E = TypeVar("_E", Rep, Account)


@dataclass(frozen=True)
class Roster:
    """Reps and accounts as one decision sees them, each sorted by id."""

    reps: tuple[Rep, ...]
    accounts: tuple[Account, ...]

    def rep(self, rep_id: str | None) -> Rep | None:
        return next((rep for rep in self.reps if rep.id == rep_id), None)


async def load_roster(connection: AsyncConnection, seed: RosterConfig, now: datetime) -> Roster:
    """The stored roster, after inserting the entries of ``seed`` it does not hold yet."""
    stored_reps = await _load(connection, reps, Rep)
    stored_accounts = await _load(connection, accounts, Account)
    new_reps = await _insert_missing(connection, reps, stored_reps, seed.reps, now)
    new_accounts = await _insert_missing(connection, accounts, stored_accounts, seed.accounts, now)
    return Roster(
        reps=_by_id([*stored_reps, *new_reps]),
        accounts=_by_id([*stored_accounts, *new_accounts]),
    )


async def load_rep(connection: AsyncConnection, rep_id: str) -> Rep | None:
    """One rep as the roster holds it now (the SLA monitor reads calendars and managers here)."""
    result = await connection.execute(select(reps.c.document).where(reps.c.id == rep_id))
    document = result.scalar_one_or_none()
    return None if document is None else Rep.model_validate(document)


async def put_rep(connection: AsyncConnection, rep: Rep, now: datetime) -> bool:
    """Store ``rep`` in place of any earlier version; True if it is new."""
    return await _upsert(connection, reps, rep.id, rep, now)


async def put_account(connection: AsyncConnection, account: Account, now: datetime) -> bool:
    """Store ``account`` in place of any earlier version; True if it is new."""
    return await _upsert(connection, accounts, account.id, account, now)


async def _load(connection: AsyncConnection, table: Table, model: type[_M]) -> list[_M]:
    result = await connection.execute(select(table.c.document).order_by(table.c.id))
    return [model.model_validate(document) for document in result.scalars()]


async def _insert_missing(
    connection: AsyncConnection,
    table: Table,
    stored: Sequence[_E],
    seed: Iterable[_E],
    now: datetime,
) -> list[_E]:
    """Insert the seed entries not stored yet; a concurrent insert of the same id is a no-op."""
    known = {entry.id for entry in stored}
    missing = [entry for entry in seed if entry.id not in known]
    if missing:
        rows = [_row(entry.id, entry, now) for entry in missing]
        await connection.execute(
            dialect_insert(connection, table).values(rows).on_conflict_do_nothing()
        )
    return missing


async def _upsert(
    connection: AsyncConnection, table: Table, entry_id: str, entry: BaseModel, now: datetime
) -> bool:
    existing = await connection.execute(select(table.c.id).where(table.c.id == entry_id))
    created = existing.first() is None
    row = _row(entry_id, entry, now)
    statement = dialect_insert(connection, table).values(row)
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={"document": row["document"], "updated_at": now},
        )
    )
    return created


def _row(entry_id: str, entry: BaseModel, now: datetime) -> dict[str, Any]:
    return {"id": entry_id, "document": entry.model_dump(mode="json"), "updated_at": now}


def _by_id(entries: Iterable[_E]) -> tuple[_E, ...]:
    return tuple(sorted(entries, key=lambda entry: entry.id))


async def save_decision_inputs(
    connection: AsyncConnection,
    assignment_id: str,
    inputs: DecisionInputs,
    roster: RosterSnapshot,
) -> None:
    """Keep what the decision behind ``assignment_id`` saw; the roster once per version."""
    await connection.execute(
        dialect_insert(connection, roster_snapshots)
        .values(version=inputs.roster_version, document=roster.model_dump(mode="json"))
        .on_conflict_do_nothing(index_elements=["version"])
    )
    await connection.execute(
        decision_inputs.insert().values(
            assignment_id=assignment_id,
            roster_version=inputs.roster_version,
            decided_at=inputs.decided_at.astimezone(UTC),
            document=inputs.model_dump(mode="json"),
        )
    )


async def load_decision_inputs(
    connection: AsyncConnection, assignment_id: str
) -> tuple[DecisionInputs, RosterSnapshot] | None:
    """What the decision behind ``assignment_id`` saw (None: a claim, or decided before kept)."""
    row = (
        await connection.execute(
            select(decision_inputs.c.document, roster_snapshots.c.document.label("roster"))
            .join(roster_snapshots, roster_snapshots.c.version == decision_inputs.c.roster_version)
            .where(decision_inputs.c.assignment_id == assignment_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return DecisionInputs.model_validate(row.document), RosterSnapshot.model_validate(row.roster)
