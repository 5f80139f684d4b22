"""Hand-off's state in the database: the roster, rotation per pool, rep loads, lead contexts and
assignments.

Every function works on the handler's connection, inside the consume loop's transaction, so the
state change, the assignment rows, the inbox rows and the outbox rows commit together. Each reads
or writes a whole batch's rows with one statement (``WHERE key IN (...)``, multi-row writes).

The roster holds reps and accounts as validated domain documents. Seeding: every rep and account of
the definitions file that the database does not hold yet is inserted (when a process first reads
the roster, and again whenever the roster version moved). An entry already in the database is never
overwritten from the file: after the first seed, ``PUT /v1/reps/{id}`` and ``PUT /v1/accounts/{id}``
own it. Every change bumps the roster version in its own transaction, and routing reads the
version on every batch (``RosterCache``), so an edit applies to the next lead without a restart.
Removing an entry from the file does not remove it from the database: set the rep ``active: false``
(or drop the account's owner) through the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Table, bindparam, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.contracts.events import LeadSalesReady
from leadrelay.store.engine import BuiltOnce, dialect_insert
from leadrelay.store.unit_of_work import Transaction, stored_utc
from services.handoff.domain import Account, Rep, RepLoad, RosterConfig, RoutingState
from services.handoff.domain.inputs import DecisionInputs, RosterSnapshot, snapshot_of
from services.handoff.tables import (
    ROSTER_VERSION_ID,
    accounts,
    assignments,
    decision_inputs,
    lead_context,
    rep_load,
    reps,
    roster_snapshots,
    roster_version,
    rotation,
)


def _upsert_loads(connection: AsyncConnection) -> Any:
    statement = dialect_insert(connection, rep_load)
    columns = ("day", "assigned_on_day", "open_leads", "updated_at")
    return statement.on_conflict_do_update(
        index_elements=[rep_load.c.rep_id],
        set_={column: statement.excluded[column] for column in columns},
    )


# Built once (see leadrelay.store.engine.BuiltOnce): every assigning batch runs them.
_LOCK_ROTATIONS = (
    select(rotation.c.pool, rotation.c.credits, rotation.c.version)
    .where(rotation.c.pool.in_(bindparam("pools", expanding=True)))
    .order_by(rotation.c.pool)
    .with_for_update()
)
_LOCK_LOADS = (
    select(rep_load.c.rep_id, rep_load.c.day, rep_load.c.assigned_on_day, rep_load.c.open_leads)
    .where(rep_load.c.rep_id.in_(bindparam("rep_ids", expanding=True)))
    .order_by(rep_load.c.rep_id)
    .with_for_update()
)
_CREATE_LOADS = BuiltOnce(
    lambda connection: dialect_insert(connection, rep_load).on_conflict_do_nothing()
)
_UPSERT_LOADS = BuiltOnce(_upsert_loads)
_KEEP_LEAD_CONTEXTS = BuiltOnce(
    lambda connection: dialect_insert(connection, lead_context).on_conflict_do_nothing()
)
_LEAD_HISTORIES = (
    select(assignments)
    .where(assignments.c.lead_key.in_(bindparam("lead_keys", expanding=True)))
    .order_by(assignments.c.lead_key, assignments.c.episode, assignments.c.attempt)
)


class RoutingStateConflictError(RuntimeError):
    """A pool's rotation changed under a decision that held its lock: a bug, never routine."""


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


async def lock_rotations(
    connection: AsyncConnection, pools: Iterable[str], now: datetime
) -> RoutingState:
    """Lock and read the rotation rows of ``pools`` (created on first use), in pool order.

    Decisions of one pool run one at a time across instances (PostgreSQL: ``FOR UPDATE``;
    SQLite: its single writer) and each sees the credits the previous one left; decisions of
    other pools do not wait. Always locked in pool order, so two batches never deadlock.
    """
    wanted = sorted(set(pools))
    if not wanted:
        return RoutingState()
    found = await _select_rotations(connection, wanted)
    missing = [pool for pool in wanted if pool not in found]
    if missing:
        await connection.execute(
            dialect_insert(connection, rotation)
            .values(
                [{"pool": pool, "credits": {}, "version": 0, "updated_at": now} for pool in missing]
            )
            .on_conflict_do_nothing()
        )
        found |= await _select_rotations(connection, missing)
    return RoutingState(
        pools={pool: credits for pool, (credits, _) in found.items()},
        versions={pool: version for pool, (_, version) in found.items()},
    )


async def save_rotations(
    connection: AsyncConnection, before: RoutingState, after: RoutingState, now: datetime
) -> None:
    """Write each pool whose version moved from ``before`` to ``after``, if its stored version
    is still the one read (compare-and-set, a second guard behind the row lock)."""
    for pool in sorted(after.versions):
        expected = before.version_of(pool)
        if after.version_of(pool) == expected:
            continue
        result = await connection.execute(
            update(rotation)
            .where(rotation.c.pool == pool, rotation.c.version == expected)
            .values(credits=after.pools[pool], version=after.version_of(pool), updated_at=now)
        )
        if result.rowcount != 1:
            raise RoutingStateConflictError(
                f"pool {pool} is no longer at version {expected}; the decision is retried"
            )


async def _select_rotations(
    connection: AsyncConnection, pools: Sequence[str]
) -> dict[str, tuple[dict[str, int], int]]:
    result = await connection.execute(_LOCK_ROTATIONS, {"pools": list(pools)})
    return {row.pool: (dict(row.credits), int(row.version)) for row in result}


async def lock_loads(
    connection: AsyncConnection, rep_ids: Iterable[str], now: datetime
) -> dict[str, RepLoad]:
    """Lock and read the loads of ``rep_ids`` (a row is created for a rep without one), in rep
    order: what a decision may charge cannot change under it, nor does anyone else's wait."""
    wanted = sorted(set(rep_ids))
    if not wanted:
        return {}
    found = await _select_loads(connection, wanted)
    missing = [rep_id for rep_id in wanted if rep_id not in found]
    if missing:
        await connection.execute(
            _CREATE_LOADS(connection),
            [_load_row(RepLoad(rep_id=rep_id), now) for rep_id in missing],
        )
        found |= await _select_loads(connection, missing)
    return found


async def save_loads(connection: AsyncConnection, loads: Sequence[RepLoad], now: datetime) -> None:
    """Write ``loads`` in one statement (each rep's row replaced; executemany form, so the
    statement compiles once whatever the row count)."""
    if not loads:
        return
    rows = [_load_row(load, now) for load in loads]
    await connection.execute(_UPSERT_LOADS(connection), rows)


async def _select_loads(connection: AsyncConnection, rep_ids: Sequence[str]) -> dict[str, RepLoad]:
    result = await connection.execute(_LOCK_LOADS, {"rep_ids": list(rep_ids)})
    return {row.rep_id: RepLoad.model_validate(row._asdict()) for row in result}


def _load_row(load: RepLoad, now: datetime) -> dict[str, Any]:
    return {**load.model_dump(), "updated_at": now}


async def save_lead_contexts(
    connection: AsyncConnection, contexts: Sequence[LeadSalesReady], now: datetime
) -> None:
    """Keep the sales-ready payload of each episode: reassignments route and publish from it."""
    if not contexts:
        return
    rows = [
        {
            "lead_key": ready.lead_key,
            "episode": ready.episode,
            "payload": ready.model_dump(mode="json", exclude_none=True),
            "received_at": now,
        }
        for ready in contexts
    ]
    await connection.execute(_KEEP_LEAD_CONTEXTS(connection), rows)


async def load_lead_contexts(
    connection: AsyncConnection, episodes: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], LeadSalesReady]:
    """The sales-ready payloads kept for these ``(lead_key, episode)`` pairs (those known)."""
    wanted = sorted(set(episodes))
    if not wanted:
        return {}
    result = await connection.execute(
        select(lead_context.c.lead_key, lead_context.c.episode, lead_context.c.payload).where(
            tuple_(lead_context.c.lead_key, lead_context.c.episode).in_(wanted)
        )
    )
    return {
        (row.lead_key, row.episode): LeadSalesReady.model_validate(row.payload) for row in result
    }


async def lead_histories(
    connection: AsyncConnection, lead_keys: Iterable[str]
) -> dict[str, list[StoredAssignment]]:
    """Every assignment of each lead, oldest first (by episode, then attempt); a lead never
    assigned has an empty list."""
    wanted = sorted(set(lead_keys))
    histories: dict[str, list[StoredAssignment]] = {key: [] for key in wanted}
    if not wanted:
        return histories
    result = await connection.execute(_LEAD_HISTORIES, {"lead_keys": wanted})
    for row in result:
        stored = _assignment(dict(row._mapping))
        histories[stored.lead_key].append(stored)
    return histories


async def insert_assignments(connection: AsyncConnection, made: Sequence[StoredAssignment]) -> None:
    """Record the assignments; a second one for the same attempt fails on the unique constraint."""
    if made:
        await connection.execute(assignments.insert(), [vars(assignment) for assignment in made])


async def update_assignments(
    connection: AsyncConnection, changed: Sequence[StoredAssignment]
) -> None:
    """Store what changed on earlier assignments: released (when, by what), turn given back."""
    if not changed:
        return
    statement = (
        update(assignments)
        .where(assignments.c.assignment_id == bindparam("changed_id"))
        .values(
            released_at=bindparam("changed_released_at"),
            released_by=bindparam("changed_released_by"),
            credit_returned=bindparam("changed_credit_returned"),
        )
    )
    await connection.execute(
        statement,
        [
            {
                "changed_id": assignment.assignment_id,
                "changed_released_at": assignment.released_at,
                "changed_released_by": assignment.released_by,
                "changed_credit_returned": assignment.credit_returned,
            }
            for assignment in changed
        ],
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
    values["assigned_at"] = stored_utc(values["assigned_at"])
    if values["released_at"] is not None:
        values["released_at"] = stored_utc(values["released_at"])
    return StoredAssignment(**values)


_M = TypeVar("_M", bound=BaseModel)
_E = TypeVar("_E", Rep, Account)


@dataclass(frozen=True)
class Roster:
    """Reps and accounts as one decision sees them, each sorted by id, and the roster version
    they are (what a decision records to name the roster it used)."""

    reps: tuple[Rep, ...]
    accounts: tuple[Account, ...]
    version: int = 0

    @cached_property
    def _reps_by_id(self) -> dict[str, Rep]:
        return {rep.id: rep for rep in self.reps}

    def rep(self, rep_id: str | None) -> Rep | None:
        return self._reps_by_id.get(rep_id or "")

    @cached_property
    def snapshot(self) -> tuple[RosterSnapshot, str]:
        """The roster as decisions record it, and its digest (computed once per version)."""
        snapshot = snapshot_of(self.reps, self.accounts)
        return snapshot, snapshot.version


class RosterCache:
    """The roster in memory: each transaction reads the one roster-version row and reloads (and
    validates) the reps and accounts only when it moved, so a change made through the API, by
    this process or another, applies to the next decision without a restart."""

    def __init__(self, seed: RosterConfig) -> None:
        self._seed = seed
        self._kept: Roster | None = None

    async def current(self, tx: Transaction) -> Roster:
        """The roster as ``tx`` sees it (seeded first if the database lacks seed entries)."""
        version = await _roster_version(tx.connection)
        kept = self._kept
        if kept is not None and kept.version == version:
            return kept
        roster = await load_roster(tx.connection, self._seed, tx.now())
        tx.after_commit(lambda: self._keep(roster))
        return roster

    def _keep(self, roster: Roster) -> None:
        """Keep ``roster`` (a read that committed) unless a newer one is kept already."""
        if self._kept is None or roster.version >= self._kept.version:
            self._kept = roster


async def load_roster(connection: AsyncConnection, seed: RosterConfig, now: datetime) -> Roster:
    """The stored roster, after inserting the entries of ``seed`` it does not hold yet.

    The version row is locked first, like every roster change does: a change commits its
    entries and its version together. Read under a share lock on PostgreSQL, the entries read
    here are exactly that version's. When seed entries are missing the row is taken exclusively
    (a new version) before they are inserted, so instances seeding at once queue on that one row;
    share-locking it and then bumping it, two seeders deadlocked on each other's new entries.
    """
    if await _lacks_seed_entries(connection, seed):
        version = await _bump_roster_version(connection, now)
    else:
        version = await _roster_version(connection, share=True)
    stored_reps = await _load(connection, reps, Rep)
    stored_accounts = await _load(connection, accounts, Account)
    new_reps = await _insert_missing(connection, reps, stored_reps, seed.reps, now)
    new_accounts = await _insert_missing(connection, accounts, stored_accounts, seed.accounts, now)
    return Roster(
        reps=_by_id([*stored_reps, *new_reps]),
        accounts=_by_id([*stored_accounts, *new_accounts]),
        version=version,
    )


async def put_rep(connection: AsyncConnection, rep: Rep, now: datetime) -> bool:
    """Store ``rep`` in place of any earlier version (a new roster version); True if it is new."""
    await _bump_roster_version(connection, now)  # the version row first, as load_roster
    return await _upsert(connection, reps, rep.id, rep, now)


async def put_account(connection: AsyncConnection, account: Account, now: datetime) -> bool:
    """Store ``account`` in place of any earlier version (a new roster version); True if new."""
    await _bump_roster_version(connection, now)  # the version row first, as load_roster
    return await _upsert(connection, accounts, account.id, account, now)


async def _roster_version(connection: AsyncConnection, *, share: bool = False) -> int:
    """The roster's version (0 before its first change)."""
    query = select(roster_version.c.version).where(roster_version.c.id == ROSTER_VERSION_ID)
    version = await connection.scalar(query.with_for_update(read=True) if share else query)
    return int(version or 0)


async def _bump_roster_version(connection: AsyncConnection, now: datetime) -> int:
    """One more roster version, in the transaction of the change; the new version."""
    statement = dialect_insert(connection, roster_version).values(
        id=ROSTER_VERSION_ID, version=1, updated_at=now
    )
    bumped = statement.on_conflict_do_update(
        index_elements=[roster_version.c.id],
        set_={"version": roster_version.c.version + 1, "updated_at": now},
    ).returning(roster_version.c.version)
    return int((await connection.execute(bumped)).scalar_one())


async def _lacks_seed_entries(connection: AsyncConnection, seed: RosterConfig) -> bool:
    """Whether any rep or account of ``seed`` is not stored yet (a plain read, no lock)."""
    for table, entries in ((reps, seed.reps), (accounts, seed.accounts)):
        wanted = {entry.id for entry in entries}
        if wanted:
            stored = await connection.scalars(select(table.c.id).where(table.c.id.in_(wanted)))
            if wanted - set(stored):
                return True
    return False


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
        await connection.execute(dialect_insert(connection, table).on_conflict_do_nothing(), rows)
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
    seen: Sequence[tuple[str, DecisionInputs]],
    rosters: Sequence[RosterSnapshot],
) -> None:
    """Keep what the decisions behind these assignment ids saw, and each roster they saw once
    per version (two statements whatever the count)."""
    if not seen:
        return
    kept = {roster.version: roster.model_dump(mode="json") for roster in rosters}
    await connection.execute(
        dialect_insert(connection, roster_snapshots).on_conflict_do_nothing(
            index_elements=["version"]
        ),
        [{"version": version, "document": document} for version, document in kept.items()],
    )
    await connection.execute(
        decision_inputs.insert(),
        [
            {
                "assignment_id": assignment_id,
                "roster_version": inputs.roster_version,
                "decided_at": inputs.decided_at.astimezone(UTC),
                "document": inputs.model_dump(mode="json"),
            }
            for assignment_id, inputs in seen
        ],
    )


@dataclass
class Workset:
    """What a batch of hand-off events reads and changes: loaded with a few set-based queries,
    locked (rotation pools, then rep loads, each in order), changed in memory in event order, and
    written back in bulk by :meth:`save`. Nothing is written before ``save``."""

    connection: AsyncConnection
    now: datetime
    roster: Roster
    histories: dict[str, list[StoredAssignment]]
    contexts: dict[tuple[str, int], LeadSalesReady]
    rotation: RoutingState = field(default_factory=RoutingState)
    """The locked pools' credits as the batch has left them so far."""
    loads: dict[str, RepLoad] = field(default_factory=dict)
    """The locked reps' loads as the batch has left them so far."""
    _locked: RoutingState = field(default_factory=RoutingState)
    _new_contexts: list[LeadSalesReady] = field(default_factory=list)
    _made: dict[str, StoredAssignment] = field(default_factory=dict)
    _changed: dict[str, StoredAssignment] = field(default_factory=dict)
    _changed_loads: dict[str, RepLoad] = field(default_factory=dict)
    _seen: list[tuple[str, DecisionInputs]] = field(default_factory=list)

    async def lock(self, pools: Iterable[str], rep_ids: Iterable[str]) -> None:
        """Lock (and read) the pools and rep loads not locked yet."""
        new_pools = set(pools) - set(self._locked.versions)
        if new_pools:
            found = await lock_rotations(self.connection, new_pools, self.now)
            self._locked = _merged(self._locked, found)
            self.rotation = _merged(self.rotation, found)
        new_reps = set(rep_ids) - set(self.loads)
        if new_reps:
            self.loads |= await lock_loads(self.connection, new_reps, self.now)

    async def refresh_histories(self) -> None:
        """Read the batch's leads' assignments again, once the first locks are held: what
        another instance committed while this batch waited for them (PostgreSQL; SQLite has a
        single writer, so nothing can have changed)."""
        if self.connection.dialect.name != "sqlite":
            self.histories = await lead_histories(self.connection, self.histories)

    def history(self, lead_key: str) -> list[StoredAssignment]:
        """The lead's assignments, oldest first, with the batch's own changes."""
        return self.histories.setdefault(lead_key, [])

    def keep_context(self, ready: LeadSalesReady) -> None:
        """Keep the episode's sales-ready payload (reassignments route from it)."""
        key = (ready.lead_key, ready.episode)
        if key not in self.contexts:
            self.contexts[key] = ready
            self._new_contexts.append(ready)

    def record(self, assignment: StoredAssignment) -> None:
        """A new assignment of the batch."""
        self.history(assignment.lead_key).append(assignment)
        self._made[assignment.assignment_id] = assignment

    def change(self, assignment: StoredAssignment, **changes: Any) -> StoredAssignment:
        """Change an earlier assignment (``released_at``, ``released_by``, ``credit_returned``)
        as the batch holds it now; the changed assignment."""
        history = self.history(assignment.lead_key)
        index = next(
            n for n, held in enumerate(history) if held.assignment_id == assignment.assignment_id
        )
        changed = replace(history[index], **changes)
        history[index] = changed
        if changed.assignment_id in self._made:
            self._made[changed.assignment_id] = changed
        else:
            self._changed[changed.assignment_id] = changed
        return changed

    def keep_inputs(self, assignment_id: str, inputs: DecisionInputs) -> None:
        """What the decision behind ``assignment_id`` saw (its roster is the workset's)."""
        self._seen.append((assignment_id, inputs))

    def set_load(self, load: RepLoad) -> None:
        self.loads[load.rep_id] = load
        self._changed_loads[load.rep_id] = load

    async def save(self) -> None:
        """Write everything the batch changed, one statement per table (one per changed pool)."""
        await save_lead_contexts(self.connection, self._new_contexts, self.now)
        await save_rotations(self.connection, self._locked, self.rotation, self.now)
        await save_loads(self.connection, list(self._changed_loads.values()), self.now)
        await update_assignments(self.connection, list(self._changed.values()))
        await insert_assignments(self.connection, list(self._made.values()))
        await save_decision_inputs(self.connection, self._seen, [self.roster.snapshot[0]])


async def open_workset(
    connection: AsyncConnection,
    now: datetime,
    roster: Roster,
    lead_keys: Iterable[str],
    episodes: Iterable[tuple[str, int]] = (),
) -> Workset:
    """The workset of a batch about ``lead_keys``, with the kept sales-ready payloads of
    ``episodes``; nothing is locked yet (:meth:`Workset.lock`)."""
    histories = await lead_histories(connection, lead_keys)
    contexts = await load_lead_contexts(connection, episodes)
    return Workset(connection, now, roster, histories, contexts)


def _merged(state: RoutingState, more: RoutingState) -> RoutingState:
    """``state`` with the pools of ``more`` it does not hold yet."""
    return RoutingState(
        pools={**more.pools, **state.pools}, versions={**more.versions, **state.versions}
    )
