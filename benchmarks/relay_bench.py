"""One outbox hop: a transaction's commit to its event on the topic, p50/p99, beside bare Kafka.

Run from the repository root::

    python -m benchmarks.relay_bench                     # starts Kafka, a temp SQLite file
    python -m benchmarks.relay_bench --postgres          # and a throwaway PostgreSQL
    python -m benchmarks.relay_bench --bootstrap HOST:PORT --database-url postgresql+asyncpg://...

Three runs in one process on one broker and database, each sending ``--events`` events paced at
``--rate`` per second, one transaction per event:

- ``bare``: aiokafka ``send_and_wait`` (acks=all) straight to the topic, no database: the floor;
- ``polling``: the outbox relay driven as it was before it woke on commit, a drain every
  ``--poll-ms`` (200 ms, the old default);
- ``woken``: ``OutboxRelay.run`` with its safety poll at 60 s, so only the commit signal (and on
  PostgreSQL ``LISTEN/NOTIFY``) can make it publish in time.

Latency is the time from the end of the commit (or, for ``bare``, the start of the send) to a
consumer on the topic receiving the record, on one clock. A figure, not a test: nothing here
asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from benchmarks.common import broker, percentile, poll_until, postgres, running
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.runtime.producer import EventProducer
from leadrelay.runtime.topics import ensure_topics
from leadrelay.runtime.waiting import pause
from leadrelay.store.engine import create_engine_for
from leadrelay.store.outbox_relay import OutboxRelay
from leadrelay.store.unit_of_work import Store

PARTITIONS = 6
WOKEN_SAFETY_POLL = 60.0
WARMUP = 20
"""The first events of each run are sent but not counted."""


@dataclass
class Result:
    name: str
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        return percentile(self.latencies_ms, fraction)


def recycled(run: str, n: int) -> CloudEvent:
    """A small valid event; ten keys, so a key's events follow each other on one partition."""
    lead_key = f"lk_relay_{n % 10}"
    return new_event(
        "leadrelay.lead_recycled.v1",
        source="benchmark",
        id=f"{run}-{n}",
        subject=lead_key,
        data={"lead_key": lead_key, "reason": "manual", "recycled_at": datetime.now(UTC)},
    )


class Arrivals:
    """A consumer on the topic noting when each event id arrived (``time.perf_counter``)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="latest",
            enable_auto_commit=False,
            fetch_max_wait_ms=5,
        )
        self.seen: dict[str, float] = {}

    async def run(self, stop: asyncio.Event) -> None:
        await self._consumer.start()
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=50)
                now = time.perf_counter()
                for records in batches.values():
                    for record in records:
                        event_id = CloudEvent.from_bytes(record.value).id
                        self.seen.setdefault(event_id, now)
        finally:
            await self._consumer.stop()

    async def ready(self) -> None:
        """Wait until the consumer has its partitions and positions (``latest`` resolved)."""

        async def assigned() -> bool:
            return bool(self._consumer.assignment())

        await poll_until(assigned)
        for partition in self._consumer.assignment():
            await self._consumer.position(partition)


async def paced(
    count: int, rate: float, send: Callable[[int], Awaitable[float]], sent: dict[int, float]
) -> None:
    """Call ``send(n)`` at ``rate`` per second; ``sent[n]`` is when its clock starts."""
    started = time.perf_counter()
    for n in range(count):
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
        sent[n] = await send(n)


async def measure(
    name: str,
    bootstrap: str,
    topic: str,
    args: argparse.Namespace,
    send: Callable[[str, int], Awaitable[float]],
) -> Result:
    run = f"{name}-{uuid.uuid4().hex[:6]}"
    arrivals = Arrivals(bootstrap, topic)
    sent: dict[int, float] = {}
    async with running(arrivals.run):
        await arrivals.ready()
        await paced(WARMUP + args.events, args.rate, lambda n: send(run, n), sent)
        deadline = time.perf_counter() + 30

        async def all_arrived() -> bool:
            return len(arrivals.seen) >= WARMUP + args.events or time.perf_counter() > deadline

        await poll_until(all_arrived)
    result = Result(name)
    for n, at in sent.items():
        if n < WARMUP:
            continue  # metadata fetches, connection set-up, a first drain
        arrived = arrivals.seen.get(f"{run}-{n}")
        if arrived is not None:
            result.latencies_ms.append((arrived - at) * 1000)
    return result


def committer(store: Store, topic: str) -> Callable[[str, int], Awaitable[float]]:
    async def send(run: str, n: int) -> float:
        async with store.transaction() as tx:
            await tx.publish(topic, recycled(run, n))
        return time.perf_counter()

    return send


def polling_relay(
    relay: OutboxRelay, poll_seconds: float
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The relay as it ran before it woke on commit: drain, pause ``poll_seconds``, repeat."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            while await relay.publish_pending():
                pass
            await pause(stop, poll_seconds)

    return run


async def main(args: argparse.Namespace, bootstrap: str, database_url: str) -> list[Result]:
    topic = f"bench-relay-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], partitions=PARTITIONS)
    await upgrade_async(database_url)
    store = Store(create_engine_for(database_url))
    producer = EventProducer(bootstrap)
    await producer.start()
    results: list[Result] = []
    try:

        async def bare(run: str, n: int) -> float:
            event = recycled(run, n)
            at = time.perf_counter()
            await producer.send_batch([(topic, event.subject, event.to_bytes())])
            return at

        results.append(await measure("bare aiokafka send (acks=all)", bootstrap, topic, args, bare))
        relay = OutboxRelay(store, producer)
        async with running(polling_relay(relay, args.poll_ms / 1000)):
            results.append(
                await measure(
                    f"outbox, drained every {args.poll_ms:.0f} ms (before)",
                    bootstrap,
                    topic,
                    args,
                    committer(store, topic),
                )
            )
        async with running(lambda stop: relay.run(stop, poll_seconds=WOKEN_SAFETY_POLL)):
            results.append(
                await measure(
                    "outbox, woken on commit (after)",
                    bootstrap,
                    topic,
                    args,
                    committer(store, topic),
                )
            )
    finally:
        await producer.stop()
        await store.dispose()
    return results


@contextlib.contextmanager
def database(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    """The given database, a throwaway PostgreSQL (``--postgres``) or a temporary SQLite file."""
    if args.database_url or args.postgres:
        with postgres(args.database_url) as url:
            yield url
        return
    yield f"sqlite+aiosqlite:///{workdir / 'relay.db'}"


def report(results: list[Result], args: argparse.Namespace, backend: str) -> None:
    print(f"one hop, commit -> on the topic; {args.events} events at {args.rate:.0f}/s, {backend}")
    print(f"{'run':44} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'p99 / bare':>10}")
    floor = results[0].percentile(0.99)
    for result in results:
        p99 = result.percentile(0.99)
        print(
            f"{result.name:44} {len(result.latencies_ms):>5} {result.percentile(0.5):>8.1f} "
            f"{p99:>8.1f} {p99 / floor:>9.1f}x"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--database-url", help="an existing scratch database")
    parser.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL")
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--poll-ms", type=float, default=200.0)
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    options = parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        broker(options.bootstrap) as servers,
        database(options, Path(tmp)) as url,
    ):
        backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
        report(asyncio.run(main(options, servers, url)), options, backend)
