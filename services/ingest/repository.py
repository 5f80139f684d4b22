"""Signed deliveries already accepted, shared by every ingest replica through one table.

The verdict on a delivery (new, a sender's retry, a replay, a conflict) is the pure
:class:`~services.ingest.domain.delivery_window.DeliveryWindow`'s, taken in memory, so a
request makes no database round trip for it. This adapter keeps that window filled:

* an accepted delivery enters the window at once (:meth:`SeenDeliveries.remember`), and a
  writer task inserts whatever accumulated in one multi-row statement, then forgets it;
* before the first verdict, the window is loaded with every unexpired row of the table, so a
  restarted ingest still refuses replays of what it accepted before;
* every ``REFRESH_SECONDS`` the rows written since by other replicas are read (each process
  tags its rows, so it reads only the others'), so a replay sent to another replica behind the
  load balancer is refused too, from a second after the original was accepted;
* expired rows are pruned from the table at most once a minute by the writer.

HubSpot sends no delivery id, so its signature stands in for one (a retry is signed anew and
is simply processed again; its stable event ids let consumers drop the copy).

What this trades, knowingly: for up to a refresh after another replica accepted a delivery, a
replay of it sent here is taken as new; while the database is down, so is a replay of what
another replica or an earlier run accepted (counted as
``leadrelay_ingest_history_unavailable_total``); a replica whose writes were held up by more
than ``SYNC_MARGIN`` is not seen by the others. A write that fails is retried with the
runtime's back-off until the row would have expired. None of this can lose an accepted event:
the history only decides what to refuse, and a replay taken as new produces events with the
ids already on the topic, which every consumer drops as redeliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.service import Runtime, backoff_policy
from leadrelay.runtime.waiting import pause
from leadrelay.store.engine import dialect_insert
from leadrelay.store.unit_of_work import Clock, Store, stored_utc, utc_now
from services.ingest.domain.delivery_window import Accepted, DeliveryWindow, Seen
from services.ingest.domain.signatures import Delivery
from services.ingest.tables import seen_deliveries

log = logging.getLogger(__name__)

MAX_UNWRITTEN = 100_000
"""Deliveries kept in memory while the database does not take them; beyond, the newest are
not kept (replay refusal weakens, as while the database is down; nothing accepted is lost)."""
MAX_KNOWN = 500_000
"""Deliveries the window holds (five minutes at about 1,600 requests/s); beyond, a new one is
still written for the other replicas but judged here by the table's copy only after a restart."""
REFRESH_SECONDS = 1.0
SYNC_MARGIN = timedelta(seconds=30)
"""How late another replica's row may reach the table (its writer's delay plus the two clocks'
difference) and still be read by the next refresh."""
STALE_AFTER = timedelta(seconds=5)
"""A window last refreshed longer ago than this may miss other replicas' deliveries."""
FIRST_LOAD_WAIT_SECONDS = 5.0
"""How long the first verdict waits for the table's rows before going on without them."""
WRITE_EVERY_SECONDS = 0.05
"""How long accepted deliveries gather before one transaction writes them (each commit is an
``fsync`` on SQLite); the window already holds them, so nothing waits for the write."""
PRUNE_EVERY = timedelta(minutes=1)
CLOSE_TIMEOUT_SECONDS = 5.0


class SeenDeliveries:
    """The ``ingest_seen_deliveries`` table, mirrored in a :class:`DeliveryWindow`."""

    def __init__(
        self,
        store: Store,
        tolerance: timedelta,
        clock: Clock,
        backoff: BackoffPolicy | None = None,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self._store = store
        self._tolerance = tolerance
        self._clock = clock
        self._backoff = backoff or BackoffPolicy()
        self._refresh_seconds = refresh_seconds
        self._window = DeliveryWindow(MAX_KNOWN)
        self._tag = uuid.uuid4().hex  # this process's rows, which its refresh skips
        self._unwritten: dict[tuple[str, str], dict[str, Any]] = {}
        self._writer: asyncio.Task[None] | None = None
        self._syncer: asyncio.Task[None] | None = None
        self._first_sync = asyncio.Event()
        self._synced_at: datetime | None = None
        self._stop = asyncio.Event()
        self._pruned_at: datetime | None = None
        self._forgotten_at: datetime | None = None

    async def check(self, source: str, delivery: Delivery) -> Seen:
        """NEW, or a retry of an accepted delivery, judged in memory (the first call waits up
        to ``FIRST_LOAD_WAIT_SECONDS`` for the table's rows).

        Raises ``SignatureError("replayed")`` for a replay and ``DeliveryConflict`` for a
        different body under an accepted id.
        """
        if not self._first_sync.is_set():
            self._start_syncing()
            try:
                await asyncio.wait_for(self._first_sync.wait(), FIRST_LOAD_WAIT_SECONDS)
            except TimeoutError:
                log.warning("delivery history not loaded in time: judging without it")
        return self._window.verdict(source, delivery)

    @property
    def complete(self) -> bool:
        """Whether the window holds every replica's deliveries as of a few seconds ago (False
        while the database is unreachable: only this process's are known)."""
        return self._synced_at is not None and self._clock() - self._synced_at <= STALE_AFTER

    def remember(self, source: str, delivery: Delivery, now: datetime) -> None:
        """Record an accepted delivery (a concurrent twin wins silently), written soon."""
        expires_at = max(now, delivery.signed_at) + self._tolerance
        accepted = Accepted(delivery.content_sha256, delivery.body_sha256, expires_at)
        self._window.add(source, delivery.delivery_id, accepted)
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
                "expires_at": expires_at,
                "accepted_by": self._tag,
            },
        )
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_unwritten())
        self._start_syncing()

    async def close(self) -> None:
        """Write what is still in memory (bounded in time), then stop the writer and refresh."""
        self._stop.set()
        if self._syncer is not None:
            self._syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncer
        if self._writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), CLOSE_TIMEOUT_SECONDS)
            except TimeoutError:
                self._writer.cancel()
                log.warning("closing with %d delivery record(s) unwritten", len(self._unwritten))

    def _start_syncing(self) -> None:
        if self._syncer is None and not self._stop.is_set():
            self._syncer = asyncio.get_running_loop().create_task(self._sync_forever())

    async def _sync_forever(self) -> None:
        """Load the table's window, then read the other replicas' new rows every refresh;
        back off while the database is down, and drop expired entries once a minute."""
        backoff = self._backoff.start()
        while not self._stop.is_set():
            started = self._clock()
            try:
                await self._read_rows_since(self._sync_cursor(started))
            except (SQLAlchemyError, OSError) as error:
                log.warning("could not read the delivery history: %s", type(error).__name__)
                self._first_sync.set()
                await backoff.wait(self._stop)
                continue
            self._synced_at = started
            self._first_sync.set()
            backoff.reset()
            if self._forgotten_at is None or started - self._forgotten_at >= PRUNE_EVERY:
                self._window.forget_expired(started)  # a scan of the whole window
                self._forgotten_at = started
            await pause(self._stop, self._refresh_seconds)

    def _sync_cursor(self, now: datetime) -> datetime:
        """The least ``expires_at`` a row new since the last refresh can have: every row of
        the window on the first load (or after an outage of the whole window)."""
        if self._synced_at is None:
            return now
        return max(now, self._synced_at + self._tolerance - SYNC_MARGIN)

    async def _read_rows_since(self, expires_from: datetime) -> None:
        query = select(
            seen_deliveries.c.source,
            seen_deliveries.c.delivery_id,
            seen_deliveries.c.content_sha256,
            seen_deliveries.c.body_sha256,
            seen_deliveries.c.expires_at,
        ).where(
            seen_deliveries.c.expires_at >= expires_from,
            seen_deliveries.c.accepted_by.is_distinct_from(self._tag),
        )
        async with self._store.read() as connection:
            rows = (await connection.execute(query)).all()
        for row in rows:
            expires_at = stored_utc(row.expires_at)
            accepted = Accepted(row.content_sha256, row.body_sha256, expires_at)
            self._window.add(row.source, row.delivery_id, accepted)

    async def _write_unwritten(self) -> None:
        """Insert what accumulated over ``WRITE_EVERY_SECONDS`` (at once when closing), again
        and again until nothing is left; back off on errors and drop only rows that have
        expired meanwhile."""
        backoff = self._backoff.start()
        while self._unwritten:
            await pause(self._stop, WRITE_EVERY_SECONDS)  # a batch per transaction, not a row
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
    """The history on ``runtime``'s store, closed (its last rows written) with the runtime.

    Its writes take their turn on the store's writer path like every other writer of the
    process; its reads are one query a second, never one per request.
    """
    history = SeenDeliveries(runtime.store, tolerance, utc_now, backoff_policy(runtime.settings))
    runtime.closing.append(history.close)
    return history
