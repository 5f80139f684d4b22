"""The firing loop: finds clocks that came due and emits their warnings, breaches and ladder steps.

Durable and exactly-once: in ONE transaction a batch of due clocks is claimed with one statement
(the due clocks and their open siblings, locked), the pure domain decides in memory what fires,
one statement saves the new clock states and one writes the events to the outbox. A crash before
the commit fires nothing (the next round does it all); after it, the saved state says it
happened. Row locks (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single writer on SQLite) let
several monitor instances, and several batches of one, share the work without firing a clock
twice. The loop runs at start, so clocks that came due while the service was down fire as soon
as it is back.

Between rounds it does not poll blindly: while batches come back full it claims the next at
once, and when the due work is done it sleeps until the earliest next fire time (at most
``poll_seconds``, which bounds how late a clock added meanwhile, or a clock running faster than
real time in a demo, can be noticed).

A poison clock (one whose firing raises a bug's error rather than an outage's) cannot stop the
others: the round rolls back, the assignment's clocks are quarantined in their own transaction
(state ``failed``, no next fire time, ``leadrelay_sla_clocks_quarantined_total`` counts them, an
alert fires) and the next round fires everything else. An outage still backs off and retries.

``now`` is the store's clock, injected in tests; the loop never reads the system clock itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.failure import is_retried_without_limit
from leadrelay.runtime.periodic import repeat
from leadrelay.runtime.waiting import pause
from leadrelay.store.engine import is_sqlite
from leadrelay.store.unit_of_work import Store, Transaction
from services.sla_monitor import repository
from services.sla_monitor.domain import (
    Breach,
    FiringReport,
    SlaAction,
    SlaClock,
    Warn,
    fire_due,
    to_utc,
)
from services.sla_monitor.messages import ActionPublisher
from services.sla_monitor.metrics import SlaMetrics
from services.sla_monitor.repository import StoredClock

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 2000
"""Due clocks per transaction: large enough that the statements' fixed cost is spread thin,
small enough that a handler waiting on one of the batch's row locks waits a fraction of a
second."""
HELD_RETRY_SECONDS = 0.05
"""How soon to look again when what is due is held by another transaction (deferred)."""
GAUGE_REFRESH_SECONDS = 15.0
"""Counting open clocks scans an index; every poll would be wasteful on a large table."""


class _PoisonClocksError(Exception):
    """One assignment's clocks whose firing raised: the round rolls back, they are quarantined."""

    def __init__(self, failures: Mapping[str, Exception]) -> None:
        super().__init__(f"{len(failures)} clock(s) failed to fire")
        self.failures = dict(failures)


@dataclass(frozen=True)
class _Fired:
    """An action with the clock it came from (as it was before firing) and its team."""

    action: SlaAction
    clock: SlaClock
    stored: StoredClock


class FiringLoop:
    """Fires due clocks every ``poll_seconds`` until stopped."""

    def __init__(
        self,
        store: Store,
        publisher: ActionPublisher,
        metrics: SlaMetrics,
        *,
        poll_seconds: float,
        batch_size: int = DEFAULT_BATCH_SIZE,
        workers: int | None = None,
        backoff: BackoffPolicy | None = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._metrics = metrics
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._workers = workers  # None: decided on first use (construction touches nothing)
        self._backoff = backoff
        self._next_gauge = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Fire what is due until stopped, waking for the next due time; back off while the
        database is down."""
        await repeat(
            stop,
            lambda: self.round(stop),
            every=0.0,  # the round itself waits for the next due time
            name="SLA firing",
            backoff=self._backoff,
        )

    async def round(self, stop: asyncio.Event) -> FiringReport:
        """Drain the due clocks, refresh the open-clocks gauge now and then, and wait until the
        next clock is due (or ``poll_seconds``, whichever is sooner); returns what fired."""
        report = await self.drain()
        now = asyncio.get_running_loop().time()
        if now >= self._next_gauge:
            await self.refresh_open_clocks()
            self._next_gauge = now + GAUGE_REFRESH_SECONDS
        wait = await self.seconds_until_due()
        if wait == 0.0 and report.deferred_assignments and not report.fired_clocks:
            wait = HELD_RETRY_SECONDS  # what is due is someone else's for now: do not spin
        await pause(stop, wait)
        return report

    async def seconds_until_due(self) -> float:
        """Seconds of the store's clock until the earliest clock is due, at most a poll."""
        async with self._store.read() as connection:
            earliest = await repository.next_due(connection)
        if earliest is None:
            return self._poll_seconds
        wait = (earliest - to_utc(self._store.clock())).total_seconds()
        return min(max(wait, 0.0), self._poll_seconds)

    async def drain(self) -> FiringReport:
        """Fire batches until fewer than a batch came due, or a batch could do nothing.

        On PostgreSQL ``workers`` batches run at once on their own connections: while one waits
        for the database another runs the domain, and ``SKIP LOCKED`` keeps them apart.
        """
        workers = self._workers or _default_workers(self._store)
        reports = await asyncio.gather(*(self._drain_one() for _ in range(workers)))
        return sum(reports, FiringReport())

    async def _drain_one(self) -> FiringReport:
        total = FiringReport()
        while True:
            report = await self.fire_batch()
            total += report
            if report.quarantined:
                continue  # the round was rolled back for them: fire the rest now
            if report.selected < self._batch_size or report.fired_clocks == 0:
                return total

    async def fire_batch(self) -> FiringReport:
        """One round: lock up to a batch of due clocks, fire them, save, queue events, commit;
        or, if some clocks' firing raised, roll back and quarantine those instead."""
        try:
            return await self._fire_batch()
        except _PoisonClocksError as poisoned:
            return FiringReport(quarantined=await self._quarantine(poisoned.failures))

    async def _fire_batch(self) -> FiringReport:
        async with self._store.transaction() as tx:
            now = to_utc(tx.now())
            claimed = await repository.claim_due(tx.connection, now, self._batch_size)
            deferred = claimed.deferred
            if not claimed.clocks:
                return FiringReport(claimed.due, deferred_assignments=len(deferred))
            groups = _by_assignment(claimed.clocks)
            before: list[StoredClock] = []
            after: list[StoredClock] = []
            fired: list[_Fired] = []
            for group in groups.values():
                try:
                    updated, group_fired = await self._fire_group(tx, group, now)
                except Exception as error:  # named policy: outages back off, bugs quarantine
                    if is_retried_without_limit(error):
                        raise
                    # at once: on PostgreSQL the failed statement may have aborted the transaction
                    raise _PoisonClocksError({s.clock.clock_id: error for s in group}) from error
                before += group
                after += updated
                fired += group_fired
            changed = await repository.save_changed(tx.connection, before, after)
        if deferred:
            log.info("deferred %d assignment(s) another instance is firing", len(deferred))
        lags = self._record(fired, to_utc(self._store.clock()))
        return FiringReport(claimed.due, len(changed), len(fired), len(deferred), lags)

    async def _fire_group(
        self, tx: Transaction, group: list[StoredClock], now: datetime
    ) -> tuple[list[StoredClock], list[_Fired]]:
        """Fire one assignment's clocks and queue their events; raises if any step does."""
        updated, actions = fire_due([s.clock for s in group], now)
        fired = _attribute(actions, group)
        await self._publisher.publish(tx, [(f.action, f.stored.team) for f in fired])
        return [s.replace(c) for s, c in zip(group, updated, strict=True)], fired

    async def _quarantine(self, failures: Mapping[str, Exception]) -> int:
        """Set the failed clocks aside for good (state ``failed``), count and log them."""
        async with self._store.transaction() as tx:
            count = await repository.quarantine(tx.connection, sorted(failures))
        self._metrics.quarantined_clocks.inc(count)
        for clock_id, error in sorted(failures.items()):
            log.error(
                "SLA clock %s quarantined, its firing raised %s", clock_id, type(error).__name__
            )
        return count

    async def refresh_open_clocks(self) -> None:
        """Set the open-clocks gauge from the table."""
        async with self._store.read() as connection:
            counts = await repository.count_open(connection)
        for state, count in counts.items():
            self._metrics.open_clocks.labels(state).set(count)

    def _record(self, fired: Sequence[_Fired], emitted_at: datetime) -> tuple[float, ...]:
        """Metrics for committed actions (counters once per label set); returns each action's
        firing lag in seconds."""
        lags = []
        steps: Counter[str] = Counter()
        breaches: Counter[tuple[str, str, str]] = Counter()
        for item in fired:
            action = item.action
            lag = max((emitted_at - scheduled_at(item.clock, action)).total_seconds(), 0.0)
            lags.append(lag)
            self._metrics.firing_lag.observe(lag)
            steps[_step_name(action)] += 1
            if isinstance(action, Breach):
                breaches[action.policy, item.stored.team or "", action.rep_id] += 1
        for step, count in steps.items():
            self._metrics.actions.labels(step).inc(count)
        for labels, count in breaches.items():
            self._metrics.breaches.labels(*labels).inc(count)
        return tuple(lags)


def scheduled_at(clock: SlaClock, action: SlaAction) -> datetime:
    """When ``action`` was due on ``clock`` (as it was before firing): the lag's starting point."""
    if isinstance(action, Warn) and clock.warn_at is not None:
        return clock.warn_at
    position = getattr(action, "position", None)
    step = next((s for s in clock.ladder if s.position == position), None)
    return step.at if step is not None else clock.due_at


def _default_workers(store: Store) -> int:
    """Two batches at once on PostgreSQL (one computing while the other waits for the
    database); one on SQLite, whose single writer would only make the second wait."""
    return 1 if is_sqlite(store.engine) else 2


def _by_assignment(clocks: Iterable[StoredClock]) -> Mapping[str, list[StoredClock]]:
    groups: dict[str, list[StoredClock]] = defaultdict(list)
    for stored in clocks:
        groups[stored.clock.assignment_id].append(stored)
    return groups


def _attribute(actions: Sequence[SlaAction], group: Sequence[StoredClock]) -> list[_Fired]:
    """Pair each action with the clock it fired on (the group's first for a lead-wide one)."""
    by_id = {stored.clock.clock_id: stored for stored in group}
    paired = []
    for action in actions:
        stored = by_id.get(action.clock_id or "", group[0])
        paired.append(_Fired(action, stored.clock, stored))
    return paired


def _step_name(action: SlaAction) -> str:
    return getattr(action, "step", None) or "recycle"
