"""One database transaction that records a consumed event, applies its effect and queues events.

This is the heart of exactly-once effects on an at-least-once transport: the inbox row, the
state change and the outbox rows commit together or not at all, so a redelivered event is
recognised by its id and a crash can neither lose nor duplicate an effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.schemas import validate_outgoing
from leadrelay.store.engine import READ_ONLY_OPTION, BuiltOnce, dialect_insert, is_sqlite
from leadrelay.store.tables import inbox, outbox, relay_bucket

Clock = Callable[[], datetime]

_RECORD_PROCESSED = BuiltOnce(
    lambda connection: (
        dialect_insert(connection, inbox).on_conflict_do_nothing().returning(inbox.c.event_id)
    )
)
_QUEUE_OUTBOX_ROWS = insert(outbox)


def utc_now() -> datetime:
    """The system clock, the default wherever a clock can be injected."""
    return datetime.now(UTC)


def stored_utc(value: datetime) -> datetime:
    """An instant read from a ``DateTime(timezone=True)`` column, aware and in UTC: SQLite
    hands it back naive (it was stored as UTC), PostgreSQL aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Transaction:
    """What a handler may do inside its transaction: read/write state and queue events."""

    def __init__(
        self, connection: AsyncConnection, clock: Clock, on_outbox: Callable[[], None]
    ) -> None:
        self.connection = connection
        self._clock = clock
        self._at: datetime | None = None
        self._on_outbox = on_outbox
        """Run after the commit of outbox rows (an ``after_commit`` action): the relay's wake."""
        self._queued: list[dict[str, object]] = []
        self._on_commit: list[Callable[[], None]] = []

    async def mark_all_processed(self, consumer: str, event_ids: Sequence[str]) -> frozenset[str]:
        """Record every id as processed by ``consumer`` in ONE statement; the ids that were new.

        ``INSERT ... ON CONFLICT DO NOTHING RETURNING event_id`` (SQLite >= 3.35 and PostgreSQL)
        answers which rows it inserted, so the ids it does not return were already processed.
        The conflict clause also makes a concurrent duplicate (two instances during a rebalance)
        wait for the first and then see a conflict, instead of failing. An id given twice is
        recorded once.
        """
        unique = list(dict.fromkeys(event_ids))
        if not unique:
            return frozenset()
        now = self.now()
        rows = [{"consumer": consumer, "event_id": id_, "processed_at": now} for id_ in unique]
        result = await self.connection.execute(_RECORD_PROCESSED(self.connection), rows)
        return frozenset(result.scalars().all())

    async def publish(self, topic: str, event: CloudEvent) -> None:
        """Queue ``event`` for ``topic``; the relay sends it after this transaction commits.

        The event is validated here, so a contract violation fails the handler (and its
        transaction) instead of reaching a consumer. Rows are written together at commit.
        """
        payload = validate_outgoing(event)
        self._queued.append(
            {
                "topic": topic,
                "message_key": event.subject,
                "event_id": event.id,
                "payload": payload,
                "created_at": self.now(),
                "relay_bucket": relay_bucket(event.subject, event.id),
            }
        )

    async def flush_outbox(self) -> None:
        """Write every queued outbox row in one statement (the store calls it before commit)."""
        if self._queued:
            await self.connection.execute(_QUEUE_OUTBOX_ROWS, self._queued)
            self._queued = []
            self.after_commit(self._on_outbox)

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
        """The transaction's moment: the store's clock (injected in tests) when first asked, then
        the same instant for everything the transaction records (inbox rows, state, outbox
        rows), as its effects commit at once. Replay, which reads that moment from the inbox,
        so reproduces the effects' times exactly."""
        if self._at is None:
            self._at = self._clock()
        return self._at


class DatabaseUnavailableError(ConnectionError):
    """No connection to the database could be opened, or it could not begin a transaction.

    Whatever the driver raised (asyncpg's connect timeout is a plain ``TimeoutError``, a wrong
    password an authentication error), no handler ran yet: the failure policy waits it out
    instead of blaming the message.
    """


class Store:
    """Opens transactions on one engine; the only object services get to touch the database."""

    def __init__(self, engine: AsyncEngine, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock
        self._writer = asyncio.Lock() if is_sqlite(engine) else None
        """SQLite takes one writer at a time: the process's writers queue here, in order,
        instead of polling SQLite's busy handler (which sleeps up to 100 ms a turn). It is also
        what lets a transaction try SQLite's write lock inline without waiting: no other writer
        of this process can hold it."""
        self._outbox_listeners: list[Callable[[], None]] = []

    def on_outbox_commit(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` after every commit that wrote outbox rows (the transaction's
        ``after_commit`` action, after the handler's own); returns its removal.

        The relay's in-process wake-up: it publishes as soon as a row is committed instead of
        on a timer. (Other processes learn of the commit by PostgreSQL ``NOTIFY``.)
        """
        self._outbox_listeners.append(listener)
        return lambda: self._outbox_listeners.remove(listener)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A read-write transaction: commit on normal exit, roll back on any exception (which
        propagates). Never open one inside another on the same store.

        On SQLite this is the process's one writer path (the outbox relay and ingest's history
        write through it too): its transactions take turns on an in-process lock, one writer at
        a time as SQLite allows, so none of them ever waits on SQLite's file lock for another
        writer of this process. Each begins ``BEGIN IMMEDIATE``; its statements run inline on
        the event loop, and only its commit (an ``fsync``) and, when another *process* holds the
        write lock, its ``BEGIN`` wait on a worker thread (:mod:`leadrelay.store.sqlite_inline`):
        one thread hop per transaction, two under cross-process contention."""
        async with self._one_writer(), self._connection() as connection, connection.begin():
            transaction = Transaction(connection, self.clock, self._outbox_committed)
            yield transaction
            await transaction.flush_outbox()
        transaction.committed()

    def _outbox_committed(self) -> None:
        for listener in tuple(self._outbox_listeners):
            listener()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction on one consistent snapshot that never waits for writers.

        SQLite (WAL): a deferred ``BEGIN``, which takes no write lock, so an open writer does not
        hold it up and it holds up no writer. PostgreSQL: ``REPEATABLE READ READ ONLY``, so every
        query inside sees the same snapshot (and a write is refused). Use it for every query
        that only reads: views, gauges, readiness.
        """
        async with self._connection() as connection:
            if is_sqlite(self.engine):
                await connection.execution_options(**{READ_ONLY_OPTION: True})
            else:
                await connection.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
            async with connection.begin():
                yield connection

    async def ping(self) -> None:
        """Raise if the database cannot answer; used by readiness checks."""
        async with self.read() as connection:
            await connection.execute(text("SELECT 1"))

    async def outbox_backlog(self) -> int:
        """How many queued events the relay has not sent yet."""
        async with self.read() as connection:
            result = await connection.execute(
                select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            )
            return int(result.scalar_one())

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    @asynccontextmanager
    async def _one_writer(self) -> AsyncIterator[None]:
        if self._writer is None:
            yield
            return
        async with self._writer:
            yield

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection; failing to get one is :class:`DatabaseUnavailableError`."""
        try:
            connection = await self.engine.connect()
        except Exception as error:
            # the type only: a driver's message may quote the URL, password included
            raise DatabaseUnavailableError(
                f"cannot open a database connection ({type(error).__name__})"
            ) from error
        try:
            yield connection
        finally:
            await connection.close()


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
