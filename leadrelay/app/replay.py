"""``leadrelay replay``: archived history through a draft definitions file, beside the live one.

Replay does not copy any rule. It runs the services' own handler tables, scoring's, hand-off's
and the SLA monitor's (the code ``leadrelay run`` runs, hence the same pure domains, the same
visitor linking, loads and rotation bookkeeping, and the same firing loop) in a sandbox: a private
in-memory SQLite database with the whole schema, an inbox and an outbox that nothing relays
(:mod:`leadrelay.app.sandbox`). The inputs are the archive's (web activity, forms, what sales
reported, recycles from anyone but the replayed services, who announce their own), each applied
by each service at the moment production's consumer group applied it (its inbox row), since
the groups interleave the partitions differently and decisions depend on the moment (working
hours, loads, due clocks); the archive's receipt time stands in for events a group has no row
for. What the sandbox services publish is applied when production applied the event of that id,
or when it was published, whichever is later (a draft's new events have no production row).
Inbox rows are swept after ``LEADRELAY_STATE_RETENTION_DAYS`` (default 7), so older history is
replayed in the archive's order and its decisions at the archive's moments. Production is only
read, never written, and no topic is touched.

The roster is the definitions file's ``roster:`` section (the draft's for the draft): edits made
through the roster API since are not replayed. Marketing's clocks are left out: the MAP's
acknowledgements are not archived.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.app.definitions import Definitions
from leadrelay.app.replay_report import compare, sources_of
from leadrelay.app.sandbox import (
    REPLAYED,
    SANDBOX_TOPICS,
    MovableClock,
    Pipeline,
    Services,
    Timing,
)
from leadrelay.app.tables import metadata
from leadrelay.calendar import to_utc
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.events import LeadSalesReady, parse_as
from leadrelay.contracts.topics import DEFAULT_TOPIC_PREFIX, EventType
from leadrelay.store.engine import create_engine_for
from leadrelay.store.tables import inbox, outbox
from leadrelay.store.unit_of_work import Store, stored_utc
from services.archive.repository import ArchivedEvent, archived_since
from services.handoff.repository import lead_histories
from services.scoring.domain import LeadState
from services.scoring.handlers import SOURCE as SCORING_SOURCE
from services.scoring.repository import lead_states
from services.scoring.service import NAME as SCORING
from services.sla_monitor.domain import MARKETING, ClockState, SlaClock
from services.sla_monitor.domain.at_risk import completed_at
from services.sla_monitor.messages import SOURCE as SLA_SOURCE
from services.sla_monitor.repository import clocks_of_lead

SANDBOX_URL = "sqlite+aiosqlite://"
"""In-memory SQLite: one private database per run, gone when the run ends."""
ANNOUNCED_BY_REPLAYED = frozenset({SCORING_SOURCE, SLA_SOURCE})
"""Recycles the sandbox's own scoring and SLA monitor announce again: not taken from the archive."""


@dataclass(frozen=True)
class Assignment:
    """One assignment of a lead: its episode and attempt, to whom, by which route."""

    episode: int
    attempt: int
    rep_id: str | None
    team: str | None
    route: str
    fallback_queue: str | None = None
    """The queue it waits in when nobody was eligible (``route`` ``fallback``)."""

    @property
    def holder(self) -> str:
        """Who has it: the rep, else ``queue NAME`` (``fallback`` if no queue was recorded)."""
        if self.rep_id is not None:
            return self.rep_id
        return f"queue {self.fallback_queue}" if self.fallback_queue else "fallback"


@dataclass(frozen=True)
class ClockOutcome:
    """What became of one SLA clock: ``met`` (the rep did it in time), ``breached`` (not in
    time), ``running`` (neither yet), or ``ended`` (stopped in time by a rejection or recycle)."""

    episode: int
    attempt: int
    kind: str
    policy: str
    outcome: str


@dataclass(frozen=True)
class SandboxRun:
    """What one definitions file would have done with the history (or what production did)."""

    states: Mapping[str, LeadState]
    """Every lead's final state, by lead key."""
    handoffs: tuple[LeadSalesReady, ...]
    """The ``lead_sales_ready`` events scoring would have published, in order."""
    assignments: Mapping[str, tuple[Assignment, ...]] = field(default_factory=dict)
    """Each assigned lead's assignments, oldest first."""
    clocks: Mapping[str, tuple[ClockOutcome, ...]] = field(default_factory=dict)
    """Each assigned lead's sales SLA clocks, oldest assignment first."""
    refused: int = 0
    """Events the handlers refused (production retries those, then dead-letters them)."""


@dataclass(frozen=True)
class ProductionTimes:
    """When production's consumer groups applied each event, and the last moment it recorded."""

    applied: Mapping[tuple[str, str], datetime]
    """(consumer, event id) -> when, for the replayed services' groups."""
    until: datetime | None
    """The latest inbox row of any consumer: clocks due later had not fired in production."""
    prefix: str = DEFAULT_TOPIC_PREFIX


async def load_history(
    database_url: str, since: datetime | None, *, topic_prefix: str = DEFAULT_TOPIC_PREFIX
) -> Sequence[ArchivedEvent]:
    """The archived input events received since ``since``, read (only read) from production,
    in the order and at the times production's scoring consumer group processed them."""
    engine = create_engine_for(database_url)
    try:
        async with engine.connect() as connection:
            return await archived_since(connection, since, as_seen_by=topic_prefix + SCORING)
    finally:
        await engine.dispose()


async def load_times(
    database_url: str, *, topic_prefix: str = DEFAULT_TOPIC_PREFIX
) -> ProductionTimes:
    """The replayed services' inbox rows, read (only read) from production."""
    engine = create_engine_for(database_url)
    try:
        async with engine.connect() as connection:
            groups = [topic_prefix + name for name in REPLAYED]
            rows = await connection.execute(
                select(inbox.c.consumer, inbox.c.event_id, inbox.c.processed_at).where(
                    inbox.c.consumer.in_(groups)
                )
            )
            applied = {(c, e): stored_utc(at) for c, e, at in rows}
            until = await last_recorded(connection)
    finally:
        await engine.dispose()
    return ProductionTimes(applied, until, topic_prefix)


async def last_recorded(connection: AsyncConnection) -> datetime | None:
    """The latest inbox row of any consumer: when the database last recorded anything."""
    latest = await connection.scalar(select(func.max(inbox.c.processed_at)))
    return None if latest is None else stored_utc(latest)


async def replay(
    history: Sequence[ArchivedEvent], definitions: Definitions, times: ProductionTimes | None = None
) -> SandboxRun:
    """Apply ``history`` to scoring, hand-off and the SLA monitor under ``definitions``
    (sandboxed), at production's ``times`` where known."""
    times = times or ProductionTimes({}, None)
    engine = create_engine_for(SANDBOX_URL)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        clock = MovableClock()
        store = Store(engine, clock=clock)
        services = Services.of(store, definitions)
        pipeline = Pipeline(store, clock, services, _timing(times), consumer_prefix=times.prefix)
        for archived in replayed_inputs(history):
            pipeline.offer(archived.event, _InputTime(times, archived))
        await pipeline.run(until=times.until)
        async with engine.connect() as connection:
            run = await read_run(connection, times.until)
        return SandboxRun(
            run.states, run.handoffs, run.assignments, run.clocks, sum(pipeline.refused.values())
        )
    finally:
        await engine.dispose()


async def evaluate(
    database_url: str,
    live: Definitions,
    draft: Definitions,
    *,
    since: datetime | None = None,
    lead: str | None = None,
    topic_prefix: str = DEFAULT_TOPIC_PREFIX,
) -> dict[str, Any]:
    """The report ``leadrelay replay`` prints (and the console shows): production's history
    since ``since`` replayed under ``live`` and under ``draft``, compared."""
    history = await load_history(database_url, since, topic_prefix=topic_prefix)
    times = await load_times(database_url, topic_prefix=topic_prefix)
    live_run = await replay(history, live, times)
    draft_run = await replay(history, draft, times)
    return compare(live_run, draft_run, sources_of(history), lead) | {"events": len(history)}


def replayed_inputs(history: Iterable[ArchivedEvent]) -> list[ArchivedEvent]:
    """The archived events replay feeds in: all but the recycles a replayed service announced."""
    return [
        archived
        for archived in history
        if not (
            archived.event.type == EventType.LEAD_RECYCLED.value
            and archived.event.source in ANNOUNCED_BY_REPLAYED
        )
    ]


async def read_run(connection: AsyncConnection, as_of: datetime | None = None) -> SandboxRun:
    """The outcomes a database holds: every lead's state, the hand-offs scoring queued, each
    lead's assignments and its sales SLA clocks' outcomes at ``as_of`` (the sandbox's, or
    production's to compare, at :func:`last_recorded`)."""
    states = await lead_states(connection)
    histories = await lead_histories(connection, states)
    assignments = {
        key: tuple(Assignment(a.episode, a.attempt, a.rep_id, a.team, a.route) for a in history)
        for key, history in histories.items()
        if history
    }
    clocks = {key: await _clock_outcomes(connection, key, as_of) for key in assignments}
    handoffs = await _published_handoffs(connection)
    return SandboxRun(states, handoffs, assignments, {k: v for k, v in clocks.items() if v})


def outcome_of(clock: SlaClock, as_of: datetime | None = None) -> str:
    """``met``, ``breached``, ``running`` or ``ended``, from the clock's times alone.

    A deadline is a fact of times, not of the moment the firing loop woke: a touch (or a
    rejection) after the deadline is a breach even if it came before the loop fired, and a
    clock still open past its deadline at ``as_of`` is breached though the loop had not fired
    yet. So production, whose loop wakes a little late, and the sandbox, which fires on the
    dot, tell the same outcome.
    """
    due = to_utc(clock.due_at)
    if clock.was_breached:
        return "breached"
    if clock.is_open:
        return "breached" if as_of is not None and due <= as_of else "running"
    if completed_at(clock) > due:
        return "breached"
    return "met" if clock.state is ClockState.COMPLETED else "ended"


async def _clock_outcomes(
    connection: AsyncConnection, lead_key: str, as_of: datetime | None
) -> tuple[ClockOutcome, ...]:
    clocks = await clocks_of_lead(connection, lead_key)
    return tuple(
        ClockOutcome(c.episode, c.attempt, c.kind.value, c.policy_id, outcome_of(c, as_of))
        for c in sorted(clocks, key=lambda c: (c.episode, c.attempt, c.kind.value))
        if c.rep_id != MARKETING
    )


def _timing(times: ProductionTimes) -> Timing:
    """Published events: when production applied that id, if not before it was published."""

    def when(service: str, event: CloudEvent, published_at: datetime) -> datetime:
        applied = times.applied.get((times.prefix + service, event.id))
        return published_at if applied is None else max(applied, published_at)

    return when


@dataclass(frozen=True)
class _InputTime:
    """When each service applies an archived input: its group's inbox time, else the archive's."""

    times: ProductionTimes
    archived: ArchivedEvent

    def __call__(self, service: str) -> datetime:
        key = (self.times.prefix + service, self.archived.event.id)
        return self.times.applied.get(key, self.archived.received_at)


async def _published_handoffs(connection: AsyncConnection) -> tuple[LeadSalesReady, ...]:
    rows = await connection.execute(
        select(outbox.c.payload)
        .where(outbox.c.topic == SANDBOX_TOPICS.sales_ready)
        .order_by(outbox.c.id)
    )
    return tuple(parse_as(CloudEvent.from_bytes(payload), LeadSalesReady) for (payload,) in rows)
