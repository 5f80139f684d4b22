"""``leadrelay replay``: archived history through a draft definitions file, beside the live one.

Replay does not copy any rule. It runs the scoring service's own handler table (the code
``leadrelay run scoring`` runs, hence the same domain functions and the same visitor linking)
in a sandbox: a private in-memory SQLite database with the whole schema, an inbox and an outbox
that nothing relays. Events are applied in the order production's scoring group processed them
and with the clock at that moment (its inbox rows), since the archive's own consumer group
interleaves the partitions differently; the archive's receipt time stands in for events that
group has no row for. Inbox rows are swept after ``LEADRELAY_STATE_RETENTION_DAYS`` (default 7),
so older history is replayed in the archive's order, which can differ for a lead whose visitor
and lead key sit on different partitions. Production is only read, never written, and no topic
is touched.

Each run gives every lead's final state (its stage history with the rule behind each change)
and the hand-offs it would have published; :mod:`leadrelay.app.replay_report` compares two runs.
Hand-off and the SLA monitor are not replayed yet: their decisions depend on roster, load and
rotation state that hand-off does not record per decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.app.definitions import Definitions
from leadrelay.app.tables import metadata
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.errors import ContractError
from leadrelay.contracts.events import LeadSalesReady, parse_as
from leadrelay.contracts.topics import DEFAULT_TOPIC_PREFIX, Topic, topic_name
from leadrelay.runtime.consumer import EventHandlers, apply_new
from leadrelay.store.engine import create_engine_for
from leadrelay.store.tables import outbox
from leadrelay.store.unit_of_work import Store
from services.archive.repository import ArchivedEvent, archived_since
from services.scoring.domain import LeadState, ScoringError
from services.scoring.handlers import OutputTopics, ScoringHandlers
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import lead_states
from services.scoring.service import NAME as SCORING

SANDBOX_URL = "sqlite+aiosqlite://"
"""In-memory SQLite: one private database per run, gone when the run ends."""
SANDBOX_TOPICS = OutputTopics(
    scores=topic_name(Topic.LEAD_SCORES),
    sales_ready=topic_name(Topic.SALES_READY),
    recycled=topic_name(Topic.RECYCLED),
    lifecycle=topic_name(Topic.LIFECYCLE),
)


def scoring_handlers(
    definitions: Definitions, topics: OutputTopics, metrics: ScoringMetrics
) -> ScoringHandlers:
    """Scoring's handlers under ``definitions``, given the sections the registry gives
    ``leadrelay run scoring``: the scorecard, the lifecycle's recycle cooldown and the routing
    segments (the lifecycle events' attributes)."""
    return ScoringHandlers(
        definitions.scorecard,
        topics,
        metrics,
        segment_for=definitions.routing.segment_for,
        cooldown=definitions.lifecycle.recycle_cooldown,
    )


@dataclass(frozen=True)
class SandboxRun:
    """What one definitions file would have done with the history."""

    states: Mapping[str, LeadState]
    """Every lead's final state, by lead key."""
    handoffs: tuple[LeadSalesReady, ...]
    """The ``lead_sales_ready`` events scoring would have published, in order."""
    refused: int
    """Events the handlers refused (production retries those, then dead-letters them)."""


class _ReplayClock:
    """The sandbox store's clock: the receipt time of the event being applied."""

    def __init__(self) -> None:
        self.now = datetime.min.replace(tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


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


async def run_scoring(history: Sequence[ArchivedEvent], definitions: Definitions) -> SandboxRun:
    """Apply ``history`` in arrival order to scoring's handlers under ``definitions``
    (sandboxed)."""
    engine = create_engine_for(SANDBOX_URL)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        clock = _ReplayClock()
        store = Store(engine, clock=clock)
        handlers = scoring_handlers(
            definitions, SANDBOX_TOPICS, ScoringMetrics.create(CollectorRegistry())
        ).event_handlers()
        refused = 0
        for archived in history:
            clock.now = archived.received_at
            refused += not await _apply(store, handlers, archived.event)
        async with engine.connect() as connection:
            states = await lead_states(connection)
            handoffs = await _published_handoffs(connection)
        return SandboxRun(states, handoffs, refused)
    finally:
        await engine.dispose()


async def _apply(store: Store, handlers: EventHandlers, event: CloudEvent) -> bool:
    """One event in its own transaction, deduplicated like the consume loop; False if refused.

    A refusal rolls the event's effects back, as in production, where the event then goes to
    the dead-letter topic; an event type scoring does not handle is not its input at all.
    """
    try:
        async with store.transaction() as tx:
            await apply_new(tx, SCORING, handlers, [event])
    except (ScoringError, ContractError):
        return False
    return True


async def _published_handoffs(connection: AsyncConnection) -> tuple[LeadSalesReady, ...]:
    rows = await connection.execute(
        select(outbox.c.payload)
        .where(outbox.c.topic == SANDBOX_TOPICS.sales_ready)
        .order_by(outbox.c.id)
    )
    return tuple(parse_as(CloudEvent.from_bytes(payload), LeadSalesReady) for (payload,) in rows)
