"""Publishes committed outbox rows to Kafka with acks=all and marks them sent.

A crash after the send but before the mark republishes the row on restart: consumers
recognise it by its stable event id (the inbox), so the effect still happens once. A crash
before the send loses nothing because the row is still unsent.

On PostgreSQL several processes may run a relay; a transaction-scoped advisory lock lets one
publish at a time, which keeps each key's events in the order they were written. On SQLite an
exclusive lock on a file beside the database does the same for processes sharing the file.
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
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from sqlalchemy import Row, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.metrics import RuntimeMetrics
from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.periodic import repeat
from leadrelay.store.tables import outbox
from leadrelay.store.unit_of_work import Store

log = logging.getLogger(__name__)

OutboxRow = Row[Any, Any, Any, Any]
LAST_ERROR_CHARS = 2000
RELAY_LOCK_ID = 0x1EAD_4E1A  # arbitrary, constant: the advisory lock all relays contend for


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

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows in write order; return how many were sent."""
        if self._store.engine.dialect.name == "postgresql":
            async with self._store.engine.begin() as connection:
                if not await self._take_relay_lock(connection):
                    return 0
                return await self._publish_rows(await self._unsent(connection), connection)
        with sqlite_relay_lock(self._store.engine.url.database) as held:
            if not held:
                return 0
            # SQLite has one writer: never hold its lock while waiting for the broker.
            async with self._store.engine.begin() as reader:
                rows = await self._unsent(reader)
            return await self._publish_rows(rows)

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
            async with self._store.engine.begin() as connection:
                await self._record(connection, sent_ids, errors)
        if self._metrics is not None:
            self._metrics.outbox_published.inc(len(sent_ids))
        return len(sent_ids)

    async def run(
        self,
        stop: asyncio.Event,
        *,
        poll_seconds: float = 0.2,
        backoff: BackoffPolicy | None = None,
    ) -> None:
        """Publish until ``stop`` is set, draining quickly while there is a backlog.

        A database or broker outage is waited out by the runtime's one back-off policy; the
        rows stay unsent meanwhile, so nothing is lost and the relay must not die of it.
        """
        await repeat(
            stop,
            lambda: self._drain(stop),
            every=poll_seconds,
            name="outbox relay",
            backoff=backoff,
        )
        await self.publish_pending()  # a last drain so a clean stop leaves nothing behind

    async def _drain(self, stop: asyncio.Event) -> None:
        """Publish batch after batch with no pause until one sends nothing (backlog gone)."""
        while not stop.is_set() and await self.publish_pending():
            pass

    async def _take_relay_lock(self, connection: AsyncConnection) -> bool:
        if connection.dialect.name != "postgresql":
            return True  # SQLite serialises writers already (BEGIN IMMEDIATE)
        result = await connection.execute(
            text("SELECT pg_try_advisory_xact_lock(:lock_id)"), {"lock_id": RELAY_LOCK_ID}
        )
        return bool(result.scalar_one())

    async def _unsent(self, connection: AsyncConnection) -> Sequence[OutboxRow]:
        result = await connection.execute(
            select(outbox.c.id, outbox.c.topic, outbox.c.message_key, outbox.c.payload)
            .where(outbox.c.sent_at.is_(None))
            .order_by(outbox.c.id)
            .limit(self._batch_size)
        )
        return result.all()

    async def _record(
        self, connection: AsyncConnection, sent_ids: list[int], errors: dict[int, str]
    ) -> None:
        """Mark the acknowledged rows sent and keep each refused row's error."""
        if sent_ids:
            await connection.execute(
                update(outbox).where(outbox.c.id.in_(sent_ids)).values(sent_at=self._store.clock())
            )
        for row_id, message in errors.items():
            await connection.execute(
                update(outbox).where(outbox.c.id == row_id).values(last_error=message)
            )


def _queues_by_key(rows: Sequence[OutboxRow]) -> dict[tuple[str, str], deque[OutboxRow]]:
    """Each (topic, key)'s rows in write order; a row without a key is a queue of its own."""
    queues: dict[tuple[str, str], deque[OutboxRow]] = {}
    for row in rows:
        key = row.message_key if row.message_key is not None else f"\0{row.id}"
        queues.setdefault((row.topic, key), deque()).append(row)
    return queues
