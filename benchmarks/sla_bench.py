"""Firings per second and firing lag of the SLA monitor on PostgreSQL, beside a bare queue.

Run from the repository root. Without ``--database-url`` a throwaway PostgreSQL cluster is
started from the test harness; with one, use a SCRATCH database (its ``sla_clocks`` and
``outbox`` tables are emptied)::

    python -m benchmarks.sla_bench                           # both modes, 1,000,000 clocks each
    python -m benchmarks.sla_bench --mode at-once --clocks 200000 --processes 2
    python -m benchmarks.sla_bench --mode spread --rate 5000 --database-url postgresql+asyncpg://...

Two modes, each measured against a baseline in the same run on the same rows:

* ``at-once``: every clock due at the same instant. Baseline: the bare queue mechanics,
  ``SELECT ... FOR UPDATE SKIP LOCKED LIMIT n`` plus an ``UPDATE`` per batch, no domain work and
  no events. Then the firing loop drains the same clocks: claim, pure domain, clock rows saved,
  events validated and written to the outbox. Goal: >= 50% of the baseline's rate and
  >= 10,000 clocks/s.
* ``spread``: due times spread evenly at ``--rate`` clocks per second (not all due at once).
  Baseline: the same bare queue in a loop that sleeps until the next due time when idle. Then
  the monitor's own firing loop (``FiringLoop.round``, as ``run`` calls it). Printed: the firing
  lag distribution (committed minus due). Goal: every clock within 1 s at 5,000 firings/s.

Each clock is a first-touch clock of the shipped default policy whose breach and first ladder
step (an escalation) fire together: two events per clock. The injected clock reads the
benchmark's virtual time (a fixed date plus real elapsed seconds), so lags are real. The monitor
side also prints its own processes' CPU seconds per clock, which is what limits it on a busy
machine. A figure, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay.app.definitions import load_definitions
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.topics import topic_name
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store
from services.sla_monitor.domain import (
    AssignmentFacts,
    ClockKind,
    FiringReport,
    LagSummary,
    clock_id_for,
    start_clocks,
)
from services.sla_monitor.jobs.firing import DEFAULT_BATCH_SIZE, FiringLoop
from services.sla_monitor.repository import StoredClock, row_values
from services.sla_monitor.service import SlaMonitor

COLUMNS = (
    "clock_id",
    "lead_key",
    "assignment_id",
    "role",
    "team",
    "state",
    "next_fire_at",
    "document",
)
COPY_CHUNK = 50_000
DUE = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LEAD_IN = timedelta(seconds=3)
"""Spread mode: the first clock is due this long after the run starts (process start-up)."""
IDLE_POLL_SECONDS = 1.0
"""The monitor's ``poll_seconds`` here (the shipped default): the longest an idle round waits."""


@dataclass(frozen=True)
class Run:
    """One side of a mode: clocks fired, events queued, wall span (epoch seconds), lags (one per
    clock for the baseline, one per event for the monitor) and client CPU seconds."""

    clocks: int
    events: int
    started: float
    ended: float
    lags: tuple[float, ...] = field(default=(), repr=False)
    cpu_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def rate(self) -> float:
        return self.clocks / self.seconds if self.seconds > 0 else 0.0


def virtual_now(origin: float) -> datetime:
    """The benchmark's clock: ``DUE`` at ``origin`` (epoch seconds), then real time."""
    return DUE + timedelta(seconds=time.time() - origin)


def template() -> dict[str, Any]:
    """One first-touch clock of the shipped default policy (breach, then escalate at once)."""
    definitions = load_definitions()
    policy = definitions.sla.policy_for("sdr", "fallback", None)
    facts = AssignmentFacts(
        lead_key="t",
        assignment_id="t",
        rep_id="rep-bench",
        role="sdr",
        route="fallback",
        team="bench",
        episode=1,
        attempt=1,
        assigned_at=DUE - timedelta(hours=1),
    )
    clock = start_clocks(policy, definitions.sla.calendar("default"), facts)[0]
    assert clock.kind is ClockKind.FIRST_TOUCH
    assert clock.due_at == DUE
    pending = clock.model_copy(update={"warn_at": None, "ladder": clock.ladder[:1]})
    return row_values(StoredClock(pending, "sdr", "bench"))


def records(count: int, rate: float | None) -> Iterator[list[tuple[Any, ...]]]:
    """COPY records in chunks; all due at ``DUE``, or (``rate``) one every ``1/rate`` seconds
    from ``DUE + LEAD_IN``. The JSON document goes as text (asyncpg's codec for ``json``)."""
    base = template()
    document = base["document"]
    chunk: list[tuple[Any, ...]] = []
    for n in range(count):
        assignment_id = f"as-bench-{n}"
        ids: dict[str, Any] = {
            "clock_id": clock_id_for(assignment_id, ClockKind.FIRST_TOUCH),
            "lead_key": f"lk_bench{n:08d}",
            "assignment_id": assignment_id,
        }
        times: dict[str, Any] = {}
        due = DUE
        if rate is not None:
            due = DUE + LEAD_IN + timedelta(seconds=n / rate)
            stamp = due.isoformat().replace("+00:00", "Z")
            ladder = [{**document["ladder"][0], "at": stamp}]
            times = {"due_at": stamp, "ladder": ladder}
        row = {
            **base,
            **ids,
            "next_fire_at": due,
            "document": json.dumps({**document, **ids, **times}),
        }
        chunk.append(tuple(row[c] for c in COLUMNS))
        if len(chunk) == COPY_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def setup(engine: AsyncEngine, count: int, rate: float | None, reset: bool) -> float:
    started = time.perf_counter()
    async with engine.begin() as connection:
        existing = await connection.scalar(
            text("SELECT (SELECT count(*) FROM sla_clocks) + (SELECT count(*) FROM outbox)")
        )
        if existing and not reset:
            raise SystemExit(
                "sla_clocks/outbox are not empty: use a scratch database, or pass "
                "--reset to empty them"
            )
        await connection.execute(text("TRUNCATE sla_clocks, outbox"))
    async with engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        for chunk in records(count, rate):
            await raw.copy_records_to_table("sla_clocks", records=chunk, columns=COLUMNS)
    await vacuum(engine)
    return time.perf_counter() - started


async def vacuum(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE sla_clocks"))


async def reset_clocks(engine: AsyncEngine) -> float:
    """Make every clock pending again after the baseline (outside the measured times); the
    baseline leaves documents alone, so each clock's own due time is still in it."""
    started = time.perf_counter()
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE sla_clocks SET state = 'running', "
                "next_fire_at = CAST(document ->> 'due_at' AS timestamptz)"
            )
        )
    await vacuum(engine)
    return time.perf_counter() - started


_LOCK_DUE = text(
    "SELECT clock_id, next_fire_at FROM sla_clocks WHERE next_fire_at <= :now "
    "ORDER BY next_fire_at, clock_id LIMIT :limit FOR UPDATE SKIP LOCKED"
)
_MARK_DONE = text(
    "UPDATE sla_clocks SET state = 'breached', next_fire_at = NULL WHERE clock_id = ANY(:ids)"
)
_NEXT_DUE = text("SELECT min(next_fire_at) FROM sla_clocks")


async def baseline_drain(url: str, batch_size: int, origin: float, spread: bool) -> Run:
    """The queue without the work: lock a due batch, mark it done, commit; in spread mode,
    when idle, sleep until the next due time (the same wake-up the firing loop uses)."""
    engine = create_engine_for(url, pool_size=2)
    done = 0
    lags: list[float] = []
    started, cpu = time.time(), time.process_time()
    try:
        while True:
            async with engine.begin() as connection:
                now = virtual_now(origin)
                result = await connection.execute(_LOCK_DUE, {"now": now, "limit": batch_size})
                rows = result.all()
                if rows:
                    await connection.execute(_MARK_DONE, {"ids": [row[0] for row in rows]})
            committed = virtual_now(origin)
            lags += [(committed - due).total_seconds() for _id, due in rows]
            done += len(rows)
            if len(rows) == batch_size:
                continue
            async with engine.connect() as connection:
                earliest = await connection.scalar(_NEXT_DUE)
            if earliest is None or not spread:
                return Run(done, 0, started, time.time(), tuple(lags), time.process_time() - cpu)
            wait = (earliest - virtual_now(origin)).total_seconds()
            await asyncio.sleep(min(max(wait, 0.0), IDLE_POLL_SECONDS))
    finally:
        await engine.dispose()


def _loop(store: Store, batch_size: int, workers: int | None) -> FiringLoop:
    """The SLA monitor's firing loop, wired as the service wires it."""
    monitor = SlaMonitor.create(
        store,
        load_definitions().sla,
        registry=CollectorRegistry(),
        topic_name=lambda t: topic_name(t),
        poll_seconds=IDLE_POLL_SECONDS,
        sweep_seconds=3600.0,
        batch_size=batch_size,
        workers=workers,
    )
    return monitor.firing


async def monitor_drain(
    url: str, batch_size: int, origin: float, spread: bool, workers: int | None
) -> Run:
    """The firing loop on its own engine. At once: ``drain``. Spread: ``round`` after round,
    as ``FiringLoop.run`` does, until no clock has a next fire time."""
    store = Store(create_engine_for(url, pool_size=4), clock=lambda: virtual_now(origin))
    firing = _loop(store, batch_size, workers)
    total = FiringReport()
    started, cpu = time.time(), time.process_time()
    try:
        if not spread:
            total = await firing.drain()
        else:
            stop = asyncio.Event()
            while True:
                total += await firing.round(stop)
                async with store.read() as connection:
                    if await connection.scalar(_NEXT_DUE) is None:
                        break
        return Run(
            total.fired_clocks,
            total.actions,
            started,
            time.time(),
            total.lags,
            time.process_time() - cpu,
        )
    finally:
        await store.dispose()


def _worker(args: tuple[str, str, int, float, bool, int | None]) -> Run:
    kind, url, batch_size, origin, spread, workers = args
    if kind == "baseline":
        return asyncio.run(baseline_drain(url, batch_size, origin, spread))
    return asyncio.run(monitor_drain(url, batch_size, origin, spread, workers))


def measure(
    kind: str, url: str, batch_size: int, processes: int, spread: bool, workers: int | None
) -> Run:
    """``processes`` instances draining together (separate processes: the domain is CPU).

    The rate counts from the first instance starting to the last finishing; the lag counts from
    each clock's due time, so in at-once mode process start-up shows in the lag, not the rate.
    """
    origin = time.time()
    jobs = [(kind, url, batch_size, origin, spread, workers)] * processes
    if processes == 1:
        runs = [_worker(jobs[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            runs = pool.map(_worker, jobs)
    return Run(
        sum(r.clocks for r in runs),
        sum(r.events for r in runs),
        min(r.started for r in runs),
        max(r.ended for r in runs),
        tuple(lag for r in runs for lag in r.lags),
        sum(r.cpu_seconds for r in runs),
    )


async def prepare(url: str, count: int, rate: float | None, reset: bool) -> float:
    await upgrade_async(url)
    engine = create_engine_for(url)
    try:
        return await setup(engine, count, rate, reset)
    finally:
        await engine.dispose()


async def restore(url: str) -> float:
    engine = create_engine_for(url)
    try:
        return await reset_clocks(engine)
    finally:
        await engine.dispose()


def _row(name: str, run: Run) -> str:
    lag = LagSummary.of(run.lags)
    cpu = f"{run.cpu_seconds / run.clocks * 1e6:,.0f}" if run.clocks else "-"
    return (
        f"| {name} | {run.clocks:,} | {run.events:,} | {run.seconds:,.1f} | {run.rate:,.0f} | "
        f"{lag.p50:.3f} | {lag.p99:.3f} | {lag.max:.3f} | {cpu} |"
    )


def report(title: str, base: Run, real: Run, processes: int, goal: str) -> None:
    ratio = real.rate / base.rate if base.rate else 0.0
    print(f"\n{title}")
    print(
        "| side | clocks | events | seconds | clocks/s | lag p50 s | lag p99 s | lag max s "
        "| client CPU µs/clock |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(_row(f"baseline: bare lock-and-update queue x{processes}", base))
    print(_row(f"SLA monitor firing loop x{processes}", real))
    print(f"ratio monitor/baseline: {ratio:.3f}   goal: {goal}")


def run_mode(options: argparse.Namespace, url: str, *, spread: bool, reset: bool) -> None:
    rate = options.rate if spread else None
    setup_seconds = asyncio.run(prepare(url, options.clocks, rate, reset))
    how = f"spread at {rate:,.0f}/s" if spread else "all due at once"
    print(f"\nsetup: {options.clocks:,} pending clocks ({how}) COPYed in {setup_seconds:.1f}s")
    args = (url, options.batch_size, options.processes, spread, options.workers)
    base = measure("baseline", *args)
    print(f"reset between runs: {asyncio.run(restore(url)):.1f}s")
    real = measure("monitor", *args)
    if spread:
        goal = (
            f"every clock within 1 s of its due time at {rate:,.0f}/s "
            f"(monitor: {sum(1 for lag in real.lags if lag > 1.0):,} of {len(real.lags):,} "
            "events later than 1 s)"
        )
        title = f"SLA, {options.clocks:,} clocks spread over time at {rate:,.0f}/s, PostgreSQL"
    else:
        goal = ">= 0.5 of the baseline and >= 10,000 clocks/s"
        title = f"SLA, {options.clocks:,} clocks due at once, PostgreSQL"
    report(title, base, real, options.processes, goal)


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    """The given scratch database, or a throwaway PostgreSQL cluster from the test harness."""
    if url:
        if make_url(url).get_backend_name() != "postgresql":
            raise SystemExit("--database-url must be PostgreSQL (postgresql+asyncpg://...)")
        yield url
        return
    from tests.harness.postgres import PostgresServer

    with PostgresServer() as server:
        yield server.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", help="postgresql+asyncpg://... of a scratch database (default: start one)"
    )
    parser.add_argument("--mode", choices=("at-once", "spread", "both"), default="both")
    parser.add_argument("--clocks", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=5000.0, help="spread mode: clocks due/s")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--processes", type=int, default=1, help="instances draining together (default 1)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="batches at once per monitor (default: its own)"
    )
    parser.add_argument(
        "--reset", action="store_true", help="empty sla_clocks and outbox first if they hold rows"
    )
    options = parser.parse_args()
    print(
        f"machine: {multiprocessing.cpu_count()} CPUs, load average "
        f"{', '.join(f'{x:.1f}' for x in _load())} at start"
    )
    with database(options.database_url) as url:
        if options.mode in ("at-once", "both"):
            run_mode(options, url, spread=False, reset=options.reset)
        if options.mode in ("spread", "both"):
            # after an at-once run here the rows are this benchmark's own
            run_mode(options, url, spread=True, reset=options.reset or options.mode == "both")
    print(f"load average at end: {', '.join(f'{x:.1f}' for x in _load())}")


def _load() -> tuple[float, float, float]:
    return os.getloadavg()


if __name__ == "__main__":
    main()
