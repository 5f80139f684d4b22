"""Signed deliveries already accepted: refuses replays, recognises a sender's retries.

Standard Webhooks gives each message a ``webhook-id`` that stays the same when the sender
retries, while the retry carries a fresh timestamp and therefore a fresh signature. So:

* same id, same signed content, after a ``202``: somebody replays a captured request -> 401;
* same id, same body, new timestamp, after a ``202``: the sender never saw our 202 and
  retries -> ``202`` again, nothing produced a second time;
* same id, different body, after a ``202``: a different event under a used id (a sender bug,
  or two senders sharing the ``generic`` namespace picking the same id) -> ``409``, so the
  sender learns of it instead of the event being dropped as a "retry";
* a delivery answered ``503`` (or 4xx) was never recorded, so its retry is processed afresh.

A row is only needed while a replay could pass the timestamp check, so it expires one
tolerance after the signing time; later replays are refused as stale anyway. HubSpot sends
no delivery id, so its signature stands in for one (a retry is signed anew and is simply
processed again; its stable event ids let consumers drop the copy).

On a request's path the history costs one query, never a transaction: :meth:`check` is a
single ``SELECT`` (PostgreSQL in autocommit on a pool without pre-ping, SQLite in a deferred
read that takes no write lock). Recording an accepted delivery does not wait for the database:
:meth:`remember` keeps it in memory at once, where :meth:`check` sees it too, and a writer task
inserts whatever accumulated in one multi-row statement, then forgets it; expired rows are
pruned at most once a minute by that writer. Until its row is written, only this process knows
a delivery (another replica would take a replay of it as new, as it would if the row were
lost); a write that fails is retried with the runtime's back-off until the row would have
expired. None of this can lose an accepted event: the history only decides what to refuse.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.service import Runtime, backoff_policy
from leadrelay.store.engine import READ_ONLY_OPTION, create_engine_for, dialect_insert, is_sqlite
from leadrelay.store.unit_of_work import Clock, Store, utc_now
from services.ingest.domain.signatures import Delivery, SignatureError
from services.ingest.tables import seen_deliveries

log = logging.getLogger(__name__)

MAX_UNWRITTEN = 100_000
"""Deliveries kept in memory while the database does not take them; beyond, the newest are
not kept (replay refusal weakens, as while the database is down; nothing accepted is lost)."""
PRUNE_EVERY = timedelta(minutes=1)
CLOSE_TIMEOUT_SECONDS = 5.0
HISTORY_POOL_SIZE = 5


class Seen(enum.Enum):
    """What the history says about a delivery."""

    NEW = "new"
    RETRY_OF_ACCEPTED = "retry_of_accepted"


class DeliveryConflict(Exception):
    """The delivery id was already accepted for a different body."""


@dataclass(frozen=True)
class _Digests:
    content_sha256: str
    body_sha256: str | None


class SeenDeliveries:
    """The ``ingest_seen_deliveries`` table, shared by every ingest replica."""

    def __init__(
        self,
        store: Store,
        tolerance: timedelta,
        clock: Clock,
        backoff: BackoffPolicy | None = None,
    ) -> None:
        self._store = store
        self._engine = store.engine
        self._tolerance = tolerance
        self._clock = clock
        self._backoff = backoff or BackoffPolicy()
        self._unwritten: dict[tuple[str, str], dict[str, Any]] = {}
        self._writer: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._pruned_at: datetime | None = None

    async def check(self, source: str, delivery: Delivery) -> Seen:
        """NEW, or a retry of an accepted delivery (one query; this process's unwritten
        deliveries are looked up in memory only when the table answered and knows none).

        Raises ``SignatureError("replayed")`` for a replay and :class:`DeliveryConflict` for
        a different body under an accepted id; a database error propagates (the caller decides).
        """
        stored = await self._stored(source, delivery.delivery_id)
        if stored is None:
            unwritten = self._unwritten.get((source, delivery.delivery_id))
            if unwritten is None:
                return Seen.NEW
            stored = _Digests(unwritten["content_sha256"], unwritten["body_sha256"])
        if stored.content_sha256 == delivery.content_sha256:
            raise SignatureError("replayed", "this signed request was already accepted")
        # a row written before body digests were kept (NULL) is treated as a retry, as it was
        if stored.body_sha256 not in (None, delivery.body_sha256):
            raise DeliveryConflict
        return Seen.RETRY_OF_ACCEPTED

    def remember(self, source: str, delivery: Delivery, now: datetime) -> None:
        """Record an accepted delivery (a concurrent twin wins silently), written soon."""
        if len(self._unwritten) >= MAX_UNWRITTEN:
            log.warning("delivery history backlog full: a delivery is not recorded")
            return
        self._unwritten.setdefault(
            (source, delivery.delivery_id),
            {
                "source": source,
                "delivery_id": delivery.delivery_id,
                "content_sha256": delivery.content_sha256,
                "body_sha256": delivery.body_sha256,
                "accepted_at": now,
                "expires_at": max(now, delivery.signed_at) + self._tolerance,
            },
        )
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_unwritten())

    async def close(self) -> None:
        """Write what is still in memory (bounded in time), then stop the writer."""
        self._stop.set()
        if self._writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), CLOSE_TIMEOUT_SECONDS)
            except TimeoutError:
                self._writer.cancel()
                log.warning("closing with %d delivery record(s) unwritten", len(self._unwritten))

    async def _stored(self, source: str, delivery_id: str) -> _Digests | None:
        query = select(seen_deliveries.c.content_sha256, seen_deliveries.c.body_sha256).where(
            seen_deliveries.c.source == source,
            seen_deliveries.c.delivery_id == delivery_id,
        )
        async with self._engine.connect() as connection:
            if is_sqlite(self._engine):  # a deferred BEGIN: no write lock for a read
                await connection.execution_options(**{READ_ONLY_OPTION: True})
            row = (await connection.execute(query)).first()
        return None if row is None else _Digests(row.content_sha256, row.body_sha256)

    async def _write_unwritten(self) -> None:
        """Insert what accumulated, again and again until nothing is left; back off on errors
        and drop only rows that have expired meanwhile."""
        backoff = self._backoff.start()
        while self._unwritten:
            batch = dict(self._unwritten)
            now = self._clock()
            try:
                await self._insert(list(batch.values()), now)
            except (SQLAlchemyError, OSError) as error:
                log.warning("could not record accepted deliveries: %s", type(error).__name__)
                self._forget_expired(now)
                if self._stop.is_set():
                    return
                await backoff.wait(self._stop)
                continue
            backoff.reset()
            for key, values in batch.items():
                if self._unwritten.get(key) is values:
                    del self._unwritten[key]

    async def _insert(self, rows: Sequence[dict[str, Any]], now: datetime) -> None:
        # the store's writer path: on SQLite it takes its turn on the process's writer lock
        async with self._store.transaction() as transaction:
            connection = transaction.connection
            insert = dialect_insert(connection, seen_deliveries).on_conflict_do_nothing()
            await connection.execute(insert, list(rows))  # multi-row VALUES, in chunks
            if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
                await self._prune(connection, now)

    async def _prune(self, connection: AsyncConnection, now: datetime) -> None:
        await connection.execute(delete(seen_deliveries).where(seen_deliveries.c.expires_at < now))
        self._pruned_at = now

    def _forget_expired(self, now: datetime) -> None:
        for key in [k for k, v in self._unwritten.items() if v["expires_at"] < now]:
            del self._unwritten[key]


def open_history(runtime: Runtime, tolerance: timedelta) -> SeenDeliveries:
    """The history on ``runtime``'s database, closed (its last rows written) with the runtime.

    On PostgreSQL it gets a small pool of its own (autocommit, no pre-ping: one trip per
    check); SQLite has no pre-ping nor network, so the runtime's store serves, and its writes
    take their turn on that store's writer lock with every other writer of the process.
    """
    store = runtime.store
    own = not is_sqlite(store.engine)
    if own:
        store = Store(
            create_engine_for(
                runtime.settings.database_url, pool_size=HISTORY_POOL_SIZE, single_statements=True
            )
        )
    history = SeenDeliveries(store, tolerance, utc_now, backoff_policy(runtime.settings))

    async def close() -> None:
        await history.close()
        if own:
            await store.dispose()

    runtime.closing.append(close)
    return history
