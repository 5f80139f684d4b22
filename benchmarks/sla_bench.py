"""Firings per second and firing lag of the SLA monitor, with 1,000,000 clocks due at once.

Run from the repository root, against a SCRATCH PostgreSQL database (its ``sla_clocks`` and
``outbox`` tables are emptied)::

    python -m benchmarks.sla_bench --database-url postgresql+asyncpg://user@host/db
    python -m benchmarks.sla_bench --database-url ... --clocks 100000 --processes 4

Setup COPYs the pending clocks (first-touch clocks of distinct leads, all due at the same
instant, each firing a breach and an escalation). Then, in the same run:

* baseline: the bare queue mechanics on the same rows, ``SELECT ... FOR UPDATE SKIP LOCKED``
  plus an ``UPDATE`` per batch, no domain work and no events;
* the firing loop itself: the same batches through the pure domain, the clock rows saved and
  the events validated and written to the outbox.

The injected clock starts at the common deadline and runs with real time, so the lag of a
firing (deadline to committed events) is real: with everything due at once it grows from zero
to the drain time. A figure, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass
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
    LagSummary,
    clock_id_for,
    start_clocks,
)
from services.sla_monitor.jobs.firing import DEFAULT_BATCH_SIZE
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


@dataclass(frozen=True)
class Run:
    """One drain: clocks changed, events queued, when it ran (epoch seconds), and the lags."""

    clocks: int
    events: int
    started: float
    ended: float
    lags: tuple[float, ...] = ()

    @property
    def seconds(self) -> float:
        return self.ended - self.started


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


def records(count: int) -> Iterator[list[tuple[Any, ...]]]:
    """COPY records in chunks; the JSON document as text (asyncpg's codec for ``json``)."""
    base = template()
    document = base["document"]
    chunk: list[tuple[Any, ...]] = []
    for n in range(count):
        assignment_id = f"as-bench-{n}"
        ids = {
            "clock_id": clock_id_for(assignment_id, ClockKind.FIRST_TOUCH),
            "lead_key": f"lk_bench{n:08d}",
            "assignment_id": assignment_id,
        }
        row = {**base, **ids, "document": json.dumps({**document, **ids})}
        chunk.append(tuple(row[c] for c in COLUMNS))
        if len(chunk) == COPY_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def setup(engine: AsyncEngine, count: int, reset: bool) -> float:
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
        for chunk in records(count):
            await raw.copy_records_to_table("sla_clocks", records=chunk, columns=COLUMNS)
    await vacuum(engine)
    return time.perf_counter() - started


async def vacuum(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE sla_clocks"))


async def reset_clocks(engine: AsyncEngine) -> float:
    """Make every clock pending again after the baseline (outside the measured times)."""
    started = time.perf_counter()
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE sla_clocks SET state = 'running', next_fire_at = :due"), {"due": DUE}
        )
    await vacuum(engine)
    return time.perf_counter() - started


_LOCK_DUE = text(
    "SELECT clock_id FROM sla_clocks WHERE next_fire_at <= :now "
    "ORDER BY next_fire_at, clock_id LIMIT :limit FOR UPDATE SKIP LOCKED"
)
_MARK_DONE = text(
    "UPDATE sla_clocks SET state = 'breached', next_fire_at = NULL WHERE clock_id = ANY(:ids)"
)


async def baseline_drain(url: str, batch_size: int, origin: float) -> Run:
    """The queue without the work: lock a due batch, mark it done, commit."""
    engine = create_engine_for(url, pool_size=2)
    done = 0
    started = time.time()
    try:
        while True:
            now = DUE + timedelta(seconds=time.time() - origin)
            async with engine.begin() as connection:
                result = await connection.execute(_LOCK_DUE, {"now": now, "limit": batch_size})
                ids = list(result.scalars())
                if ids:
                    await connection.execute(_MARK_DONE, {"ids": ids})
            done += len(ids)
            if len(ids) < batch_size:
                return Run(done, 0, started, time.time())
    finally:
        await engine.dispose()


async def monitor_drain(url: str, batch_size: int, origin: float) -> Run:
    """The SLA monitor's firing loop on its own engine, clock = deadline + real elapsed time."""
    store = Store(
        create_engine_for(url, pool_size=2),
        clock=lambda: DUE + timedelta(seconds=time.time() - origin),
    )
    definitions = load_definitions()
    try:
        monitor = SlaMonitor.create(
            store,
            definitions.sla,
            registry=CollectorRegistry(),
            topic_name=lambda t: topic_name(t),
            poll_seconds=1.0,
            sweep_seconds=3600.0,
            batch_size=batch_size,
        )
        started = time.time()
        report = await monitor.firing.drain()
        return Run(report.fired_clocks, report.actions, started, time.time(), report.lags)
    finally:
        await store.dispose()


def _worker(args: tuple[str, str, int, float]) -> Run:
    kind, url, batch_size, origin = args
    drain = baseline_drain if kind == "baseline" else monitor_drain
    return asyncio.run(drain(url, batch_size, origin))


def measure(kind: str, url: str, batch_size: int, processes: int) -> Run:
    """``processes`` instances draining together (separate processes: the domain is CPU).

    The rate counts from the first instance starting to the last finishing; the lag counts from
    the deadline, so process start-up shows in the lag but not in the rate.
    """
    origin = time.time()
    jobs = [(kind, url, batch_size, origin)] * processes
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
    )


async def prepare(url: str, count: int, reset: bool) -> float:
    await upgrade_async(url)
    engine = create_engine_for(url)
    try:
        return await setup(engine, count, reset)
    finally:
        await engine.dispose()


async def restore(url: str) -> float:
    engine = create_engine_for(url)
    try:
        return await reset_clocks(engine)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", required=True, help="postgresql+asyncpg://... of a scratch database"
    )
    parser.add_argument("--clocks", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--processes", type=int, default=1, help="monitor instances draining together (default 1)"
    )
    parser.add_argument(
        "--reset", action="store_true", help="empty sla_clocks and outbox first if they hold rows"
    )
    options = parser.parse_args()
    if make_url(options.database_url).get_backend_name() != "postgresql":
        raise SystemExit("--database-url must be PostgreSQL (postgresql+asyncpg://...)")
    url = options.database_url

    setup_seconds = asyncio.run(prepare(url, options.clocks, options.reset))
    print(f"setup: {options.clocks} pending clocks COPYed in {setup_seconds:.1f}s")
    base = measure("baseline", url, options.batch_size, options.processes)
    print(
        f"baseline (lock + update, no work): {base.clocks} in {base.seconds:.1f}s = "
        f"{base.clocks / base.seconds:,.0f} clocks/s"
    )
    print(f"reset between runs: {asyncio.run(restore(url)):.1f}s")
    real = measure("monitor", url, options.batch_size, options.processes)
    rate = real.clocks / real.seconds
    print(
        f"SLA monitor x{options.processes}: {real.clocks} clocks, {real.events} events in "
        f"{real.seconds:.1f}s = {rate:,.0f} clocks/s, {real.events / real.seconds:,.0f} "
        f"events/s"
    )
    print(f"firing lag: {LagSummary.of(real.lags)}")
    print(
        f"ratio: the monitor fires at {rate / (base.clocks / base.seconds):.3f} x the bare "
        f"queue's rate"
    )


if __name__ == "__main__":
    main()
