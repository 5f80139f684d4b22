"""SQLite's cost per consumer transaction: thread hops and time, inline beside aiosqlite.

Run from the repository root::

    python -m benchmarks.sqlite_bench [--transactions 30] [--batches 1,10,50]

Each transaction is what the consume loop runs for a batch of a partition: ``Store.transaction()``
around ``apply_new`` (one inbox statement for the batch) and the runtime tests' handler (one
insert and one queued outbox event per event), committed with ``synchronous=FULL`` on a file in
a temporary directory. Two engines run it in the same process, alternating batch by batch:

- ``aiosqlite``: the engine as it was before issue 13 item 4, SQLAlchemy's aiosqlite driver (a
  thread answering every call) with the same pragmas and ``BEGIN IMMEDIATE``: the baseline;
- ``inline``: :func:`~leadrelay.store.engine.create_engine_for`, statements on the event loop
  and the commit on a worker thread (:mod:`leadrelay.store.sqlite_inline`).

A thread hop is one answer from another thread waking the event loop
(``loop.call_soon_threadsafe``, which aiosqlite, ``run_in_executor`` and ``to_thread`` all end
in), counted per transaction. Time is wall-clock per transaction, the median over
``--transactions``. A figure, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from leadrelay.app.schema import upgrade_async
from leadrelay.runtime.consumer import EventHandlers, apply_new
from leadrelay.store.engine import configure_sqlite, create_engine_for
from leadrelay.store.unit_of_work import Store
from tests.integration.runtime.effects import (
    INPUT_TYPE,
    create_effects_table,
    make_handler,
    sales_activity,
)


def aiosqlite_engine(url: str) -> AsyncEngine:
    """The SQLite engine as before issue 13 item 4: aiosqlite's thread, the same pragmas."""
    engine = create_async_engine(url)
    configure_sqlite(engine)
    return engine


ENGINES: dict[str, Callable[[str], AsyncEngine]] = {
    "aiosqlite": aiosqlite_engine,
    "inline": create_engine_for,
}


@contextmanager
def counting_thread_hops() -> Iterator[Callable[[], int]]:
    """Count answers from other threads to the running loop while inside; yields the count."""
    loop = asyncio.get_running_loop()
    counter = itertools.count()
    original = loop.call_soon_threadsafe

    def counted(callback: Callable[..., object], *args: Any, **kwargs: Any) -> Any:
        next(counter)  # atomic under the GIL, from any thread
        return original(callback, *args, **kwargs)

    loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
    start = next(counter)
    try:
        yield lambda: next(counter) - start - 1
    finally:
        del loop.call_soon_threadsafe


@dataclass
class Figures:
    """One engine's figures for one batch size."""

    hops: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def hops_per_transaction(self) -> float:
        return sum(self.hops) / len(self.hops)

    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000


class Bench:
    """One store per engine, each on its own file, fed fresh events."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.handlers = EventHandlers.per_event({INPUT_TYPE: make_handler("bench.out", "bench")})
        self.next_event = 0

    async def transaction(self, size: int) -> tuple[int, float]:
        events = [sales_activity(self.next_event + i, lead_count=10**6) for i in range(size)]
        self.next_event += size
        with counting_thread_hops() as hops:
            started = time.perf_counter()
            async with self.store.transaction() as transaction:
                await apply_new(transaction, "bench", self.handlers, events)
            elapsed = time.perf_counter() - started
            return hops(), elapsed


async def open_bench(directory: Path, name: str) -> Bench:
    url = f"sqlite+aiosqlite:///{directory / name}.db"
    await upgrade_async(url)
    engine = ENGINES[name](url)
    await create_effects_table(engine)
    bench = Bench(Store(engine))
    await bench.transaction(1)  # opens the pooled connection: not a transaction's cost
    return bench


async def measure(batches: list[int], transactions: int) -> dict[tuple[str, int], Figures]:
    figures: dict[tuple[str, int], Figures] = {}
    with tempfile.TemporaryDirectory(prefix="sqlite-bench-") as directory:
        benches = {name: await open_bench(Path(directory), name) for name in ENGINES}
        try:
            for size in batches:
                for n in range(transactions):
                    order = list(benches) if n % 2 == 0 else list(reversed(benches))
                    for name in order:
                        hops, seconds = await benches[name].transaction(size)
                        entry = figures.setdefault((name, size), Figures())
                        entry.hops.append(hops)
                        entry.seconds.append(seconds)
        finally:
            for bench in benches.values():
                await bench.store.dispose()
    return figures


def report(figures: dict[tuple[str, int], Figures], batches: list[int], load: str) -> str:
    lines = [
        f"SQLite, one consumer transaction per batch (load average {load})",
        "",
        "| events per transaction | aiosqlite hops | inline hops | aiosqlite ms | inline ms "
        "| aiosqlite events/s | inline events/s | inline/aiosqlite events/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for size in batches:
        before, after = figures[("aiosqlite", size)], figures[("inline", size)]
        rate_before = size / (before.median_ms() / 1000)
        rate_after = size / (after.median_ms() / 1000)
        lines.append(
            f"| {size} | {before.hops_per_transaction():.1f} | {after.hops_per_transaction():.1f} "
            f"| {before.median_ms():.1f} | {after.median_ms():.1f} "
            f"| {rate_before:,.0f} | {rate_after:,.0f} | {rate_after / rate_before:.2f}x |"
        )
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=30, help="per batch size and engine")
    parser.add_argument("--batches", default="1,10,50", help="events per transaction")
    arguments = parser.parse_args(argv)
    batches = [int(size) for size in arguments.batches.split(",")]
    load_before = load_average()
    figures = asyncio.run(measure(batches, arguments.transactions))
    print(report(figures, batches, f"{load_before} -> {load_average()}"))


if __name__ == "__main__":
    main()
