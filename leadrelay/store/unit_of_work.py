"""One database transaction that records a consumed event, applies its effect and queues events.

This is the heart of exactly-once effects on an at-least-once transport: the inbox row, the
state change and the outbox rows commit together or not at all, so a redelivered event is
recognised by its id and a crash can neither lose nor duplicate an effect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.schemas import validate_outgoing
from leadrelay.store.engine import dialect_insert
from leadrelay.store.tables import inbox, outbox

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The system clock, the default wherever a clock can be injected."""
    return datetime.now(UTC)


class Transaction:
    """What a handler may do inside its transaction: read/write state and queue events."""

    def __init__(self, connection: AsyncConnection, clock: Clock) -> None:
        self.connection = connection
        self._clock = clock
        self._queued: list[dict[str, object]] = []
        self._on_commit: list[Callable[[], None]] = []

    async def mark_processed(self, consumer: str, event_id: str) -> bool:
        """Record ``event_id`` as processed by ``consumer``; False if it already was.

        ``ON CONFLICT DO NOTHING`` makes a concurrent duplicate (two instances during a
        rebalance) wait for the first and then see a conflict, instead of failing.
        """
        values = {"consumer": consumer, "event_id": event_id, "processed_at": self._clock()}
        statement = dialect_insert(self.connection, inbox).values(**values)
        statement = statement.on_conflict_do_nothing()
        result = await self.connection.execute(statement)
        return result.rowcount == 1

    async def publish(self, topic: str, event: CloudEvent) -> None:
        """Queue ``event`` for ``topic``; the relay sends it after this transaction commits.

        The event is validated here, so a contract violation fails the handler (and its
        transaction) instead of reaching a consumer. Rows are written together at commit.
        """
        validate_outgoing(event)
        self._queued.append(
            {
                "topic": topic,
                "message_key": event.subject,
                "event_id": event.id,
                "payload": event.to_bytes(),
                "created_at": self._clock(),
            }
        )

    async def flush_outbox(self) -> None:
        """Write every queued outbox row in one statement (the store calls it before commit)."""
        if self._queued:
            await self.connection.execute(insert(outbox), self._queued)
            self._queued = []

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once this transaction has committed, never if it rolls back.

        For metrics and logs about an effect: the consume loop may roll a batch back and apply
        its events again one by one, and counting at decision time would count them twice.
        """
        self._on_commit.append(action)

    def committed(self) -> None:
        """Run the ``after_commit`` actions (the store calls it after a successful commit)."""
        actions, self._on_commit = self._on_commit, []
        for action in actions:
            action()

    def now(self) -> datetime:
        """The store's clock (injected in tests)."""
        return self._clock()


class Store:
    """Opens transactions on one engine; the only object services get to touch the database."""

    def __init__(self, engine: AsyncEngine, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Commit on normal exit, roll back on any exception (which propagates)."""
        async with self.engine.begin() as connection:
            transaction = Transaction(connection, self.clock)
            yield transaction
            await transaction.flush_outbox()
        transaction.committed()

    async def ping(self) -> None:
        """Raise if the database cannot answer; used by readiness checks."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def outbox_backlog(self) -> int:
        """How many queued events the relay has not sent yet."""
        async with self.engine.connect() as connection:
            result = await connection.execute(
                select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            )
            return int(result.scalar_one())

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def accelerated_clock(speed: float, *, base: Clock = utc_now) -> Clock:
    """A clock running ``speed`` times faster than ``base`` from now on (demos of SLA breaches).

    ``speed=60`` turns a one-hour first-touch SLA into one real minute. Production refuses any
    speed but 1 (see ``Settings``).
    """
    if speed == 1.0:
        return base
    origin = base()

    def now() -> datetime:
        return origin + (base() - origin) * speed

    return now
