"""Loading and saving SLA clocks: the only module that knows the ``sla_clocks`` table's layout.

Every row carries the whole domain clock as JSON; ``state``, ``next_fire_at`` and ``completed_at``
are copies kept in step on every save so the firing loop can find due clocks, and the forecaster a
rep's recent completions, with an index. Instants are stored in
UTC (SQLite keeps no offset, so comparisons there are only right when everything is UTC).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Text, bindparam, cast, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.contracts.events import RepUpdated, SalesActivity, SlaAtRisk
from leadrelay.store.engine import BuiltOnce, dialect_insert, is_sqlite
from leadrelay.store.unit_of_work import stored_utc
from services.sla_monitor.domain import (
    MARKETING as MARKETING_ROLE,
)
from services.sla_monitor.domain import ClockKind, ClockState, SlaClock, next_fire_at, to_utc
from services.sla_monitor.domain.at_risk import completed_at
from services.sla_monitor.tables import sla_clocks, sla_forecasts, sla_parked_activity, sla_reps

OPEN_STATES: tuple[str, ...] = (ClockState.RUNNING, ClockState.WARNED, ClockState.BREACHED)
QUARANTINED = "failed"
"""The row state of a clock whose firing raised (the document keeps the clock as it was)."""


@dataclass(frozen=True)
class StoredClock:
    """A domain clock with the assignment facts the metrics need (the clock does not hold them)."""

    clock: SlaClock
    role: str
    team: str | None

    def replace(self, clock: SlaClock) -> StoredClock:
        return StoredClock(clock, self.role, self.team)


def row_values(stored: StoredClock) -> dict[str, Any]:
    """The row for ``stored``; the benchmark and tests bulk-insert with it too."""
    clock = stored.clock
    fire_at = next_fire_at(clock)
    return {
        "clock_id": clock.clock_id,
        "lead_key": clock.lead_key,
        "assignment_id": clock.assignment_id,
        "rep_id": clock.rep_id,
        "role": stored.role,
        "team": stored.team,
        "state": clock.state.value,
        "next_fire_at": to_utc(fire_at) if fire_at is not None else None,
        "document": clock.model_dump(mode="json"),
        "completed_at": _completed_at(clock),
    }


def _completed_at(clock: SlaClock) -> datetime | None:
    return completed_at(clock) if clock.state is ClockState.COMPLETED else None


_INSERT_IF_NEW = BuiltOnce(
    lambda connection: dialect_insert(connection, sla_clocks).on_conflict_do_nothing(
        index_elements=["clock_id"]
    )
)
"""Built once (see leadrelay.store.engine.BuiltOnce), as is :data:`_LEAD_CLOCKS`."""
_LEAD_CLOCKS = (
    select(sla_clocks)
    .where(sla_clocks.c.lead_key == bindparam("lead_key"), sla_clocks.c.state != QUARANTINED)
    .order_by(sla_clocks.c.clock_id)
    .with_for_update()
)


async def insert_new(connection: AsyncConnection, clocks: Sequence[StoredClock]) -> int:
    """Insert clocks whose id is not stored yet; returns how many were new.

    Clock ids derive from the assignment, so a replayed assignment inserts nothing.
    """
    if not clocks:
        return 0
    inserted = 0
    statement = _INSERT_IF_NEW(connection)
    for stored in clocks:  # one statement each: rowcount of a multi-row upsert is unreliable
        result = await connection.execute(statement, row_values(stored))
        inserted += result.rowcount
    return inserted


LEAD_LOCK_SPACE = 0x51A  # the first key of the two-key advisory locks that serialise one lead


async def lock_lead(connection: AsyncConnection, lead_key: str) -> None:
    """Hold the lead until the transaction ends, against other instances and partitions.

    An assignment and a sales activity of one lead arrive on different topics, possibly in two
    instances at once: without this, the activity could find no clocks and park while the
    assignment, not yet seeing the parked row, starts clocks that never learn of it. SQLite lets
    one writer in at a time, so there is nothing to do there.
    """
    if not is_sqlite(connection.engine):
        await _lock_in_order(connection, LEAD_LOCK_SPACE, (lead_key,))


REP_LOCK_SPACE = 0x51B  # the first key of the advisory locks that serialise one rep's changes


async def lock_batch(
    connection: AsyncConnection,
    rep_ids: Collection[str],
    lead_keys: Collection[str],
    roster_changed: Collection[str] = (),
) -> None:
    """Hold every rep, then every lead a consumer batch touches, before its first event: the
    reps, then the leads (with the leads on which a ``roster_changed`` rep has open clocks),
    each set in one order.

    A batch applies its events one by one, and each event locks its rep and lead; two batches
    of different partitions locking in the order of their events deadlock (an assignment and a
    sales activity of the same leads arrive on two topics), which PostgreSQL detects only after
    a second's wait and then rolls one back. Taking every lock first, in the same order in
    every batch, makes them wait for each other instead. SQLite lets one writer in at a time.
    """
    if is_sqlite(connection.engine):
        return
    await _lock_in_order(connection, REP_LOCK_SPACE, rep_ids)
    leads = set(lead_keys)
    for rep_id in roster_changed:
        leads.update(await leads_of_rep(connection, rep_id))
    await _lock_in_order(connection, LEAD_LOCK_SPACE, leads)


async def _lock_in_order(connection: AsyncConnection, space: int, keys: Collection[str]) -> None:
    """The advisory locks of ``keys`` in ``space``, one statement, in the order of their hash
    (the lock's key), each once."""
    if keys:
        await connection.execute(
            text(
                "SELECT pg_advisory_xact_lock(:space, held.key) FROM (SELECT DISTINCT"
                " hashtext(k) AS key FROM unnest(CAST(:keys AS text[])) AS k ORDER BY key) AS held"
            ),
            {"space": space, "keys": sorted(keys)},
        )


async def load_lead(connection: AsyncConnection, lead_key: str) -> list[StoredClock]:
    """Every clock of a lead, locked (``FOR UPDATE``) against the firing loop, oldest first."""
    result = await connection.execute(_LEAD_CLOCKS, {"lead_key": lead_key})
    return sorted((_stored(row) for row in result), key=_started)


@dataclass(frozen=True)
class Claimed:
    """A claimed batch: every open clock of the due clocks' assignments, locked, and the
    assignments left for a later round because another transaction holds one of their clocks."""

    clocks: list[StoredClock]
    deferred: set[str]
    due: int
    """How many due clocks the queue handed out (deferred ones included): a full batch means
    more may be waiting."""


async def claim_due(connection: AsyncConnection, now: datetime, limit: int) -> Claimed:
    """Lock up to ``limit`` clocks due by ``now`` (earliest first) with their open siblings, in
    ONE statement.

    The inner ``SELECT ... FOR UPDATE SKIP LOCKED LIMIT`` is the queue: several monitor instances
    (and several batches of one) share the due clocks without waiting for one another. The
    outer query locks every open clock of those assignments, because firing one clock can end
    its siblings; a sibling held elsewhere (another batch, a handler) is skipped, and the
    per-row count of the assignment's open clocks tells the batch to defer that assignment
    rather than act on half of it (both sides waiting could deadlock). SQLite has no row locks:
    ``BEGIN IMMEDIATE`` lets one writer in at a time, so the same query without them is right.
    """
    clocks = sla_clocks
    others = sla_clocks.alias("others")
    locking = not is_sqlite(connection.engine)
    queue = (
        select(clocks.c.assignment_id)
        .where(clocks.c.next_fire_at <= to_utc(now))
        .order_by(clocks.c.next_fire_at, clocks.c.clock_id)
        .limit(limit)
    )
    due = (queue.with_for_update(skip_locked=True) if locking else queue).cte("due")
    open_clocks = (
        select(func.count())
        .where(others.c.assignment_id == clocks.c.assignment_id, others.c.state.in_(OPEN_STATES))
        .scalar_subquery()
    )
    claim = select(clocks.c.role, clocks.c.team, cast(clocks.c.document, Text), open_clocks).where(
        clocks.c.assignment_id.in_(select(due.c.assignment_id)), clocks.c.state.in_(OPEN_STATES)
    )
    if locking:
        claim = claim.with_for_update(of=clocks, skip_locked=True)
    rows = (await connection.execute(claim)).all()
    claimed = [
        StoredClock(SlaClock.model_validate_json(document), role, team)
        for role, team, document, _count in rows
    ]
    expected = {s.clock.assignment_id: count for s, (*_, count) in zip(claimed, rows, strict=True)}
    got = Counter(s.clock.assignment_id for s in claimed)
    deferred = {assignment for assignment, count in expected.items() if got[assignment] < count}
    kept = [s for s in claimed if s.clock.assignment_id not in deferred]
    due_now = sum(1 for s in claimed if _is_due(s.clock, now))
    return Claimed(kept, deferred, due_now)


def _is_due(clock: SlaClock, now: datetime) -> bool:
    fire_at = next_fire_at(clock)
    return fire_at is not None and fire_at <= now


async def save_changed(
    connection: AsyncConnection, before: Iterable[StoredClock], after: Iterable[StoredClock]
) -> list[StoredClock]:
    """Write the clocks that changed, all in ONE statement; returns them."""
    old = {stored.clock.clock_id: stored.clock for stored in before}
    changed = [stored for stored in after if old.get(stored.clock.clock_id) != stored.clock]
    if changed:
        await _write_clocks(connection, [stored.clock for stored in changed])
    return changed


_UPDATE_FROM_ARRAYS = text(
    "UPDATE sla_clocks AS c SET state = v.state, next_fire_at = v.next_fire_at, "
    "document = CAST(v.document AS json), completed_at = v.completed_at "
    "FROM unnest(CAST(:clock_ids AS text[]), CAST(:states AS text[]), "
    "CAST(:fire_ats AS timestamptz[]), CAST(:documents AS text[]), "
    "CAST(:completed_ats AS timestamptz[])) "
    "AS v(clock_id, state, next_fire_at, document, completed_at) WHERE c.clock_id = v.clock_id"
)
"""PostgreSQL: one statement, five array parameters, whatever the number of clocks; a fixed
text, so nothing is compiled per batch."""

_UPDATE_ONE = (
    update(sla_clocks)
    .where(sla_clocks.c.clock_id == bindparam("key"))
    .values(document=bindparam("text_document", type_=Text))
)
"""SQLite: the same change as one prepared statement run over every row in one driver call."""


async def _write_clocks(connection: AsyncConnection, changed: Sequence[SlaClock]) -> None:
    """Save ``changed`` clocks' state, next fire time, document and completion time (their other
    columns never change after insert). Documents go as JSON text, serialised by pydantic in one
    pass."""
    fire_ats = [next_fire_at(clock) for clock in changed]
    columns = {
        "clock_ids": [clock.clock_id for clock in changed],
        "states": [clock.state.value for clock in changed],
        "fire_ats": [to_utc(at) if at is not None else None for at in fire_ats],
        "documents": [clock.model_dump_json() for clock in changed],
        "completed_ats": [_completed_at(clock) for clock in changed],
    }
    if not is_sqlite(connection.engine):
        await connection.execute(_UPDATE_FROM_ARRAYS, columns)
        return
    await connection.execute(
        _UPDATE_ONE,
        [
            {
                "key": key,
                "state": state,
                "next_fire_at": at,
                "text_document": document,
                "completed_at": completed,
            }
            for key, state, at, document, completed in zip(*columns.values(), strict=True)
        ],
    )


async def quarantine(connection: AsyncConnection, clock_ids: Sequence[str]) -> int:
    """Mark clocks ``failed`` with no next fire time: no round selects them again."""
    result = await connection.execute(
        update(sla_clocks)
        .where(sla_clocks.c.clock_id.in_(clock_ids))
        .values(state=QUARANTINED, next_fire_at=None)
    )
    return int(result.rowcount)


async def next_due(connection: AsyncConnection) -> datetime | None:
    """The earliest next fire time of any clock (one index probe); None when nothing is due."""
    earliest = await connection.scalar(select(func.min(sla_clocks.c.next_fire_at)))
    return None if earliest is None else stored_utc(earliest)


async def count_open(connection: AsyncConnection) -> dict[str, int]:
    """Open clocks per state (every open state present, zero included)."""
    result = await connection.execute(
        select(sla_clocks.c.state, func.count())
        .where(sla_clocks.c.state.in_(OPEN_STATES))
        .group_by(sla_clocks.c.state)
    )
    counts = dict.fromkeys(OPEN_STATES, 0)
    counts.update({state: int(count) for state, count in result.all()})
    return counts


async def clocks_of_lead(connection: AsyncConnection, lead_key: str) -> list[SlaClock]:
    """A lead's clocks for reading (no lock), oldest assignment first."""
    result = await connection.execute(select(sla_clocks).where(sla_clocks.c.lead_key == lead_key))
    return [stored.clock for stored in sorted(map(_stored, result), key=_started)]


async def leads_of_rep(connection: AsyncConnection, rep_id: str) -> list[str]:
    """The leads on which ``rep_id`` has open clocks, sorted (lock them in this order)."""
    result = await connection.execute(
        select(sla_clocks.c.lead_key)
        .where((sla_clocks.c.rep_id == rep_id) & sla_clocks.c.state.in_(OPEN_STATES))
        .distinct()
    )
    return sorted(result.scalars())


async def save_rep(connection: AsyncConnection, rep: RepUpdated) -> bool:
    """Keep ``rep`` unless a later change of the rep is kept already; True when kept."""
    kept = await load_rep(connection, rep.rep_id, for_update=True)
    if kept is not None and kept.updated_at > rep.updated_at:
        return False
    values = {
        "rep_id": rep.rep_id,
        "updated_at": to_utc(rep.updated_at),
        "document": rep.model_dump(mode="json"),
    }
    statement = dialect_insert(connection, sla_reps).values(**values)
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=["rep_id"],
            set_={"updated_at": values["updated_at"], "document": values["document"]},
        )
    )
    return True


async def load_rep(
    connection: AsyncConnection, rep_id: str, *, for_update: bool = False
) -> RepUpdated | None:
    """The latest roster change kept for ``rep_id``, or None when the monitor has seen none."""
    query = select(sla_reps.c.document).where(sla_reps.c.rep_id == rep_id)
    document = await connection.scalar(query.with_for_update() if for_update else query)
    return None if document is None else RepUpdated.model_validate(document)


@dataclass(frozen=True)
class ParkedActivity:
    """Sales activity that arrived before the assignment it is about (see ``park_activity``)."""

    event_id: str
    activity: SalesActivity


async def park_activity(
    connection: AsyncConnection, event_id: str, activity: SalesActivity, now: datetime
) -> bool:
    """Keep ``activity`` until its assignment's clocks exist; False if it was parked already."""
    values = {
        "event_id": event_id,
        "lead_key": activity.lead_key,
        "parked_at": to_utc(now),
        "document": activity.model_dump(mode="json"),
    }
    result = await connection.execute(
        dialect_insert(connection, sla_parked_activity)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    return bool(result.rowcount)


async def parked_for_lead(connection: AsyncConnection, lead_key: str) -> list[ParkedActivity]:
    """The lead's parked activity, locked, in the order it occurred."""
    result = await connection.execute(
        select(sla_parked_activity.c.event_id, sla_parked_activity.c.document)
        .where(sla_parked_activity.c.lead_key == lead_key)
        .order_by(sla_parked_activity.c.event_id)
        .with_for_update()
    )
    parked = [
        ParkedActivity(row.event_id, SalesActivity.model_validate(row.document)) for row in result
    ]
    return sorted(parked, key=lambda p: (p.activity.occurred_at, p.event_id))


async def unpark(connection: AsyncConnection, event_ids: Sequence[str]) -> None:
    """Forget parked activity once it has been applied."""
    if event_ids:
        await connection.execute(
            delete(sla_parked_activity).where(sla_parked_activity.c.event_id.in_(event_ids))
        )


async def expire_parked(connection: AsyncConnection, parked_before: datetime, limit: int) -> int:
    """Delete up to ``limit`` parked activities older than ``parked_before``; how many."""
    old = (
        select(sla_parked_activity.c.event_id)
        .where(sla_parked_activity.c.parked_at < to_utc(parked_before))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await connection.execute(
        delete(sla_parked_activity).where(sla_parked_activity.c.event_id.in_(old))
    )
    return int(result.rowcount)


def _stored(row: Row[Any]) -> StoredClock:
    return StoredClock(SlaClock.model_validate(row.document), row.role, row.team)


def _started(stored: StoredClock) -> tuple[datetime, int, bool]:
    """Assignments in order; first touch before acceptance within one."""
    clock = stored.clock
    return clock.started_at, clock.attempt, clock.kind is not ClockKind.FIRST_TOUCH


FORECAST_ROW_STATES: tuple[str, ...] = (ClockState.RUNNING, ClockState.WARNED)


async def forecast_candidates(connection: AsyncConnection, limit: int) -> list[StoredClock]:
    """Up to ``limit`` running sales clocks not yet found at risk, the soonest to fire first
    (unlocked: the forecaster locks the lead of each one it acts on)."""
    already = select(sla_forecasts.c.clock_id).where(
        sla_forecasts.c.clock_id == sla_clocks.c.clock_id
    )
    result = await connection.execute(
        select(sla_clocks)
        .where(
            sla_clocks.c.state.in_(FORECAST_ROW_STATES),
            sla_clocks.c.role != MARKETING_ROLE,
            ~already.exists(),
        )
        .order_by(sla_clocks.c.next_fire_at, sla_clocks.c.clock_id)
        .limit(limit)
    )
    return [_stored(row) for row in result]


async def clocks_of_reps(
    connection: AsyncConnection, rep_ids: Sequence[str], completed_since: datetime
) -> dict[str, list[SlaClock]]:
    """The open clocks of each of ``rep_ids`` (their load) and those they completed since
    ``completed_since`` (their pace): what a forecast reads, however long their history."""
    result = await connection.execute(
        select(sla_clocks.c.rep_id, sla_clocks.c.document).where(
            sla_clocks.c.rep_id.in_(sorted(set(rep_ids))),
            or_(
                sla_clocks.c.state.in_(OPEN_STATES),
                sla_clocks.c.completed_at >= to_utc(completed_since),
            ),
        )
    )
    clocks: dict[str, list[SlaClock]] = {rep_id: [] for rep_id in rep_ids}
    for rep_id, document in result.all():
        clocks[rep_id].append(SlaClock.model_validate(document))
    return clocks


async def record_at_risk(connection: AsyncConnection, clock: SlaClock, event: SlaAtRisk) -> bool:
    """Keep that ``clock`` was found at risk; False when it was already (announce it once)."""
    statement = (
        dialect_insert(connection, sla_forecasts)
        .values(
            clock_id=clock.clock_id,
            lead_key=clock.lead_key,
            rep_id=clock.rep_id,
            forecast_at=to_utc(event.fired_at),
            reassigned=event.reassignment_requested,
            document=event.model_dump(mode="json"),
        )
        .on_conflict_do_nothing(index_elements=["clock_id"])
    )
    result = await connection.execute(statement)
    return bool(result.rowcount)
