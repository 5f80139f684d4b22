"""Publishes committed outbox rows to Kafka with acks=all and marks them sent.

A crash after the send but before the mark republishes the row on restart: consumers
recognise it by its stable event id (the inbox), so the effect still happens once. A crash
before the send loses nothing because the row is still unsent.

**When it publishes.** The relay wakes on commit, not on a timer. In its own process, the store
calls it after every commit that wrote outbox rows. Across processes (another service, another
replica, a command-line tool) on PostgreSQL, a statement trigger on the outbox table issues
``NOTIFY leadrelay_outbox`` inside the writing transaction, which PostgreSQL delivers at commit,
and the relay ``LISTEN``\\s on a dedicated connection, reconnecting under the runtime's one
back-off policy when it drops (and catching up at once on reconnecting). A slow safety poll
(``poll_seconds``, ``LEADRELAY_OUTBOX_POLL_SECONDS``) remains only as a fallback for a wake-up
that cannot arrive: SQLite files shared by processes, a dropped listening connection, a schema
created without the migrations' trigger. Latency does not depend on it.

**Order across relays, without a lock shared by all.** Every row carries a relay bucket, a
fixed hash of its key (:func:`~leadrelay.store.tables.relay_bucket`). On PostgreSQL a relay
takes a transaction-scoped advisory lock per bucket with pending rows, without waiting,
publishes the rows of the buckets it holds, marks them and commits. So the relays of every
service and replica share the work, none ever waits for another, and each key is published by
one relay at a time, in write order. A bucket held by another relay is skipped and tried again
shortly (:data:`CONTENDED_RETRY_SECONDS`), because its holder may have read before our row
committed. On SQLite one relay per file publishes at a time (an exclusive lock on a file beside
the database), taken without waiting, so it can never deadlock with SQLite's writer lock. It
reads its rows in a read transaction, sends them holding no database lock, and marks them sent in
a :meth:`Store.transaction <leadrelay.store.unit_of_work.Store.transaction>`, the one writer path,
so it takes its turn on the process's writer lock like every other writer of the process.

Within a relay, a key's next row is sent only after its previous one was acknowledged, and a
refused row stops its key for the round, so the broker sees each key's events in write order
(a republished copy after a crash only ever repeats a prefix of that order).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from sqlalchemy import Row, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.metrics import RuntimeMetrics
from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.periodic import repeat
from leadrelay.runtime.waiting import pause
from leadrelay.store.engine import is_sqlite
from leadrelay.store.tables import outbox
from leadrelay.store.unit_of_work import Store

log = logging.getLogger(__name__)

OutboxRow = Row[Any, Any, Any, Any]
LAST_ERROR_CHARS = 2000
RELAY_LOCK_CLASS = 0x1EAD  # arbitrary, constant: the advisory-lock namespace of relay buckets
NOTIFY_CHANNEL = "leadrelay_outbox"  # the migrations' trigger notifies it on every outbox insert
SAFETY_POLL_SECONDS = 5.0
LISTEN_TIMEOUT_SECONDS = 10.0
"""How long opening the listening connection, or its keep-alive query, may take."""
LISTEN_KEEPALIVE_SECONDS = 15.0
"""How often the idle listening connection is checked, so a silently dead one is replaced."""
CONTENDED_RETRY_SECONDS = 0.05
"""How soon a relay looks again at rows whose bucket another relay held: that holder may have
read its rows just before ours committed. Only while contended; an idle relay waits for a wake."""

_LOCK_PENDING_BUCKETS = text(
    "SELECT pending.bucket, pg_try_advisory_xact_lock(:lock_class, pending.bucket) AS held "
    "FROM (SELECT DISTINCT relay_bucket AS bucket FROM outbox WHERE sent_at IS NULL) AS pending"
)
# Built once, not per round (see leadrelay.store.engine.BuiltOnce): a relay runs these after
# every commit that queued rows, so per-call construction would be a cost paid on every hop.
_UNSENT = (
    select(outbox.c.id, outbox.c.topic, outbox.c.message_key, outbox.c.payload)
    .where(outbox.c.sent_at.is_(None))
    .order_by(outbox.c.id)
    .limit(bindparam("batch_size"))
)
_UNSENT_OF_BUCKETS = _UNSENT.where(outbox.c.relay_bucket.in_(bindparam("buckets", expanding=True)))
_MARK_SENT = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(sent_at=bindparam("sent_now"))
)
_KEEP_ERROR = (
    update(outbox).where(outbox.c.id == bindparam("row_id")).values(last_error=bindparam("error"))
)
LISTEN_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, DNS, timeouts (TimeoutError is an OSError)
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
"""How opening or keeping the listening connection fails; each is waited out and retried."""


@contextlib.contextmanager
def sqlite_relay_lock(database: str | None) -> Iterator[bool]:
    """Whether this relay may publish now: one relay at a time per SQLite file.

    Without it, two processes on one file (``leadrelay run scoring`` beside ``leadrelay run
    sla-monitor``) each read a row before either marked it sent, and both sent it. It is taken
    without waiting (a relay that finds it held skips the round), so it can never deadlock with
    SQLite's own writer lock. An in-memory database belongs to one process and needs none.
    """
    if not database or database == ":memory:":
        yield True
        return
    with open(f"{database}.relay-lock", "a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


class RawPublisher(Protocol):
    """What the relay needs from a producer: send bytes and wait for acks=all."""

    async def send_batch(
        self, messages: Sequence[tuple[str, str | None, bytes]]
    ) -> list[BaseException | None]:
        """Send (topic, key, value) messages; one result per message, None when acknowledged."""
        ...


@dataclass(frozen=True)
class Round:
    """What one round of the relay did."""

    sent: int
    contended: bool
    """Some unsent rows were in buckets (or a file) another relay held."""


class OutboxRelay:
    """Moves committed events from the outbox table to Kafka."""

    def __init__(
        self,
        store: Store,
        publisher: RawPublisher,
        *,
        batch_size: int = 500,
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._batch_size = batch_size
        self._metrics = metrics
        self.listening = asyncio.Event()
        """Set while this relay LISTENs for other processes' commits (PostgreSQL)."""

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows in write order; return how many were sent."""
        return (await self.publish_round()).sent

    async def publish_round(self) -> Round:
        """One batch: the rows of every bucket this relay could lock, oldest first."""
        if not is_sqlite(self._store.engine):
            async with self._store.engine.begin() as connection:
                held, contended = await self._lock_pending_buckets(connection)
                if not held:
                    return Round(0, contended)
                rows = await self._unsent(connection, held)
                return Round(await self._publish_rows(rows, connection), contended)
        with sqlite_relay_lock(self._store.engine.url.database) as held_file:
            if not held_file:
                return Round(0, contended=True)
            # SQLite has one writer: never hold its lock while waiting for the broker.
            async with self._store.read() as reader:
                rows = await self._unsent(reader)
            return Round(await self._publish_rows(rows), contended=False)

    async def run(
        self,
        stop: asyncio.Event,
        *,
        poll_seconds: float = SAFETY_POLL_SECONDS,
        backoff: BackoffPolicy | None = None,
    ) -> None:
        """Publish until ``stop`` is set: at once after each commit, draining any backlog.

        A database or broker outage is waited out by the runtime's one back-off policy; the
        rows stay unsent meanwhile, so nothing is lost and the relay must not die of it.
        """
        policy = backoff or BackoffPolicy()
        wake = asyncio.Event()
        set_wake = _threadsafe_setter(wake)
        forget = self._store.on_outbox_commit(set_wake)
        listener = None
        if not is_sqlite(self._store.engine):
            listener = asyncio.ensure_future(self._listen(stop, set_wake, policy))
        try:
            await repeat(
                stop,
                lambda: self._drain(stop),
                every=poll_seconds,
                name="outbox relay",
                backoff=policy,
                wake=wake,
            )
        finally:
            forget()
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
        await self.publish_pending()  # a last drain so a clean stop leaves nothing behind

    async def _drain(self, stop: asyncio.Event) -> None:
        """Publish batch after batch with no pause until the backlog this relay can reach is
        gone; while another relay holds some of it, look again shortly."""
        while not stop.is_set():
            outcome = await self.publish_round()
            if outcome.sent:
                continue
            if not outcome.contended:
                return
            await pause(stop, CONTENDED_RETRY_SECONDS)

    async def _listen(
        self,
        stop: asyncio.Event,
        wake: Callable[[], None],
        policy: BackoffPolicy,
    ) -> None:
        """LISTEN for other processes' commits on a dedicated connection until ``stop``.

        A wake-up is only an accelerator (the safety poll still runs), so a connection that
        cannot be opened or drops is logged and retried under the back-off policy, never a
        reason to stop the relay. Each (re)connection wakes the relay once, for whatever was
        committed while nobody listened. The connection is checked every
        :data:`LISTEN_KEEPALIVE_SECONDS`, so a silently dead one is noticed.
        """
        dsn = self._store.engine.url.set(drivername="postgresql")
        waits = policy.start()
        while not stop.is_set():
            try:
                await self._listen_once(dsn.render_as_string(hide_password=False), stop, wake)
                waits.reset()
            except LISTEN_ERRORS as error:
                # the type only: a driver's message may quote the connection string
                log.warning(
                    "outbox relay not listening (%s), retrying in %.1fs",
                    type(error).__name__,
                    waits.next_delay,
                )
                await waits.wait(stop)

    async def _listen_once(self, dsn: str, stop: asyncio.Event, wake: Callable[[], None]) -> None:
        """One listening connection, for as long as it lives (returns on ``stop``)."""
        connection = await asyncpg.connect(dsn, timeout=LISTEN_TIMEOUT_SECONDS)
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _connection: lost.set())
            await connection.add_listener(NOTIFY_CHANNEL, lambda *_notification: wake())
            self.listening.set()
            wake()  # whatever committed while nobody listened
            while not stop.is_set():
                await pause(stop, LISTEN_KEEPALIVE_SECONDS, wake=lost)
                if lost.is_set():
                    raise ConnectionResetError("the listening connection was closed")
                if not stop.is_set():
                    await connection.fetchval("SELECT 1", timeout=LISTEN_TIMEOUT_SECONDS)
        finally:
            self.listening.clear()
            connection.terminate()

    async def _publish_rows(
        self,
        rows: Sequence[OutboxRow],
        writer: AsyncConnection | None = None,
    ) -> int:
        """Send ``rows`` keeping each key's order, mark what was acknowledged; how many.

        Rows go out in waves of one row per key (every key at once): a key's next row is sent
        only once the broker acknowledged its previous one, and a key stops at its first
        failure. So a later event of a lead can never reach the broker before an earlier one;
        the refused row keeps its error in ``last_error`` and leads its key next round.
        """
        if not rows:
            return 0
        queues = _queues_by_key(rows)
        sent_ids: list[int] = []
        errors: dict[int, str] = {}
        while queues:
            wave = [queue[0] for queue in queues.values()]
            results = await self._publisher.send_batch(
                [(row.topic, row.message_key, row.payload) for row in wave]
            )
            for key, row, error in zip(list(queues), wave, results, strict=True):
                if error is None:
                    sent_ids.append(row.id)
                    queues[key].popleft()
                    if queues[key]:
                        continue
                else:
                    log.warning(
                        "outbox row %s to %s not acknowledged: %r", row.id, row.topic, error
                    )
                    errors[row.id] = repr(error)[:LAST_ERROR_CHARS]
                del queues[key]  # done, or stopped at its first failure
        if writer is not None:
            await self._record(writer, sent_ids, errors)
        else:
            # SQLite: the store's one writer path, so this write takes its turn on the process's
            # writer lock like every other instead of waiting on SQLite's file lock beside it
            async with self._store.transaction() as transaction:
                await self._record(transaction.connection, sent_ids, errors)
        if self._metrics is not None:
            self._metrics.outbox_published.inc(len(sent_ids))
        return len(sent_ids)

    async def _lock_pending_buckets(self, connection: AsyncConnection) -> tuple[list[int], bool]:
        """Lock every bucket with unsent rows that no other relay holds (held until this
        transaction ends); those buckets, and whether another relay held any."""
        result = await connection.execute(_LOCK_PENDING_BUCKETS, {"lock_class": RELAY_LOCK_CLASS})
        held, contended = [], False
        for bucket, is_held in result.all():
            if is_held:
                held.append(bucket)
            else:
                contended = True
        return held, contended

    async def _unsent(
        self, connection: AsyncConnection, buckets: Sequence[int] | None = None
    ) -> Sequence[OutboxRow]:
        """The oldest unsent rows (of ``buckets`` only, when given), in write order."""
        if buckets is None:
            result = await connection.execute(_UNSENT, {"batch_size": self._batch_size})
        else:
            parameters = {"batch_size": self._batch_size, "buckets": list(buckets)}
            result = await connection.execute(_UNSENT_OF_BUCKETS, parameters)
        return result.all()

    async def _record(
        self, connection: AsyncConnection, sent_ids: list[int], errors: dict[int, str]
    ) -> None:
        """Mark the acknowledged rows sent and keep each refused row's error."""
        if sent_ids:
            await connection.execute(_MARK_SENT, {"ids": sent_ids, "sent_now": self._store.clock()})
        for row_id, message in errors.items():
            await connection.execute(_KEEP_ERROR, {"row_id": row_id, "error": message})


def _threadsafe_setter(event: asyncio.Event) -> Callable[[], None]:
    """A function setting ``event`` from any thread (a transaction may commit on a worker
    thread), on the loop the relay runs on."""
    loop = asyncio.get_running_loop()

    def set_event() -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        else:
            loop.call_soon_threadsafe(event.set)

    return set_event


def _queues_by_key(rows: Sequence[OutboxRow]) -> dict[tuple[str, str], deque[OutboxRow]]:
    """Each (topic, key)'s rows in write order; a row without a key is a queue of its own."""
    queues: dict[tuple[str, str], deque[OutboxRow]] = {}
    for row in rows:
        key = row.message_key if row.message_key is not None else f"\0{row.id}"
        queues.setdefault((row.topic, key), deque()).append(row)
    return queues
