"""The firing loop: finds clocks that came due and emits their warnings, breaches and ladder steps.

Durable and exactly-once: in ONE transaction a batch of due clocks is locked, the pure domain
decides what fires, the new clock states are saved and the events are queued in the outbox. A
crash before the commit fires nothing (the next round does it all); after it, the saved state
says it happened. Row locks (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single writer on
SQLite) let several monitor instances share the work without firing a clock twice. The loop
runs at start, so clocks that came due while the service was down fire as soon as it is back.

A poison clock (one whose firing raises a bug's error rather than an outage's) cannot stop the
others: the round rolls back, the assignment's clocks are quarantined in their own transaction
(state ``failed``, no next fire time, ``leadrelay_sla_clocks_quarantined_total`` counts them, an
alert fires) and the next round fires everything else. An outage still backs off and retries.

``now`` is the store's clock, injected in tests; the loop never reads the system clock itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.failure import is_retried_without_limit
from leadrelay.runtime.periodic import repeat
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

DEFAULT_BATCH_SIZE = 500
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
        backoff: BackoffPolicy | None = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._metrics = metrics
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._backoff = backoff
        self._next_gauge = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Fire what is due every poll until stopped; back off while the database is down."""
        await repeat(
            stop,
            self._round,
            every=self._poll_seconds,
            name="SLA firing",
            backoff=self._backoff,
        )

    async def _round(self) -> None:
        """Drain the due clocks, and refresh the open-clocks gauge now and then."""
        await self.drain()
        now = asyncio.get_running_loop().time()
        if now >= self._next_gauge:
            await self.refresh_open_clocks()
            self._next_gauge = now + GAUGE_REFRESH_SECONDS

    async def drain(self) -> FiringReport:
        """Fire rounds until fewer than a batch came due, or a round could do nothing."""
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
            due = await repository.lock_due(tx.connection, now, self._batch_size)
            if not due:
                return FiringReport()
            siblings, deferred = await repository.lock_open_siblings(tx.connection, due)
            groups = _by_assignment([*due, *siblings], deferred)
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
        return FiringReport(len(due), len(changed), len(fired), len(deferred), lags)

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
        """Metrics for committed actions; returns each action's firing lag in seconds."""
        lags = []
        for item in fired:
            action = item.action
            lag = max((emitted_at - scheduled_at(item.clock, action)).total_seconds(), 0.0)
            lags.append(lag)
            self._metrics.firing_lag.observe(lag)
            self._metrics.actions.labels(_step_name(action)).inc()
            if isinstance(action, Breach):
                self._metrics.breaches.labels(
                    action.policy, item.stored.team or "", action.rep_id
                ).inc()
        return tuple(lags)


def scheduled_at(clock: SlaClock, action: SlaAction) -> datetime:
    """When ``action`` was due on ``clock`` (as it was before firing): the lag's starting point."""
    if isinstance(action, Warn) and clock.warn_at is not None:
        return clock.warn_at
    position = getattr(action, "position", None)
    step = next((s for s in clock.ladder if s.position == position), None)
    return step.at if step is not None else clock.due_at


def _by_assignment(
    clocks: Iterable[StoredClock], deferred: set[str]
) -> Mapping[str, list[StoredClock]]:
    groups: dict[str, list[StoredClock]] = defaultdict(list)
    for stored in clocks:
        if stored.clock.assignment_id not in deferred:
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
