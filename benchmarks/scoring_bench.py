"""Events scored per second by one scoring process, beside a do-nothing Kafka passthrough.

Run from the repository root::

    python -m benchmarks.scoring_bench                       # starts a Kafka broker, SQLite only
    python -m benchmarks.scoring_bench --bootstrap HOST:PORT --postgres-url postgresql+asyncpg://...
    python -m benchmarks.scoring_bench --postgres --processes 2  # a throwaway PostgreSQL; and 2

Both measurements use the same broker in the same run, the same topic partition count and the
same input shape: a consume-and-produce passthrough with aiokafka (acks=all, offsets committed
per batch, no work), then the scoring service on SQLite (a temporary file) and, when given,
PostgreSQL, each on leads of its own; with ``--processes N`` also N scoring processes in one
consumer group on PostgreSQL (this one and N - 1 ``--worker`` children). Each starts after
warm-up messages went through every partition (group joined by every process, connections
open) and stops when every input was handled and every output published; the ratio says what the
exactly-once bookkeeping and the scoring cost relative to moving bytes. A figure, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import func, select

from benchmarks.common import broker, poll_until, running
from leadrelay.app.definitions import load_definitions
from leadrelay.app.schema import upgrade_async
from leadrelay.contracts.envelope import CloudEvent, new_event
from leadrelay.contracts.topics import EventType, topic_for_event_type
from leadrelay.identity import lead_key
from leadrelay.runtime.service import Runtime, open_runtime, run_services
from leadrelay.runtime.topics import ensure_topics
from leadrelay.settings import DEV_SECRET, Settings, load_settings
from leadrelay.store.tables import inbox
from services.scoring.service import NAME, build_service

PARTITIONS = 6
ACTIONS = (
    "page_view",
    "page_view",
    "pricing_page_view",
    "email_open",
    "email_click",
    "content_download",
    "webinar_registered",
    "page_view",
    "careers_page_view",
)
HANDLED = (
    "leadrelay_messages_processed",
    "leadrelay_messages_duplicate",
    "leadrelay_messages_dead_lettered",
)


@dataclass(frozen=True)
class Result:
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def workload(run: str, leads: int, per_lead: int, now: datetime) -> list[CloudEvent]:
    """Per lead: a form fill with a profile, then web activity spread over the past weeks."""
    events: list[CloudEvent] = []
    for n in range(leads):
        email = f"bench-{run}-{n}@company{n % 17}.example"
        key = lead_key(email, DEV_SECRET)
        events.append(_event(EventType.FORM_SUBMITTED, key, {
            "lead_key": key, "email": email, "form_id": "ebook-download", "source": "simulator",
            "occurred_at": now - timedelta(days=20),
            "profile": {"company_size": 50 + 37 * n % 3000, "industry": "software",
                        "job_title": "VP Sales" if n % 3 else "Engineer", "country": "US"},
        }))  # fmt: skip
        for i in range(per_lead - 1):
            events.append(_event(EventType.WEB_ACTIVITY, key, {
                "lead_key": key, "action": ACTIONS[(n + i) % len(ACTIONS)], "source": "simulator",
                "url": f"https://www.example.com/p/{i}", "occurred_at": now - timedelta(hours=i),
            }))  # fmt: skip
    return events


def _event(event_type: EventType, key: str, data: dict[str, object]) -> CloudEvent:
    event = new_event(event_type.value, "benchmark", data, subject=key)
    return CloudEvent.from_bytes(event.to_bytes())


async def produce_all(bootstrap: str, messages: list[tuple[str, CloudEvent]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, e.to_bytes(), key=(e.subject or "").encode())
                   for topic, e in messages]  # fmt: skip
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def timed(
    warm_up: Callable[[], Awaitable[None]],
    send: Callable[[], Awaitable[None]],
    done: Callable[[], Awaitable[bool]],
) -> float:
    """Seconds from the start of ``send`` until ``done``, after ``warm_up`` went through."""
    await warm_up()
    started = time.perf_counter()
    await send()
    await poll_until(done)
    return time.perf_counter() - started


async def passthrough(bootstrap: str, events: list[CloudEvent]) -> Result:
    """aiokafka consume -> produce (acks=all) -> commit per partition batch; nothing else."""
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    source, sink = f"{prefix}in", f"{prefix}out"
    await ensure_topics(bootstrap, [source, sink], partitions=PARTITIONS)
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=f"{prefix}pt",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_poll_records=200)  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2,
                                enable_idempotence=True)  # fmt: skip
    forwarded = 0

    async def forward(stop: asyncio.Event) -> None:
        nonlocal forwarded
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=200)
            for partition, records in batches.items():
                sent = [await producer.send(sink, r.value, key=r.key) for r in records]
                await asyncio.gather(*sent)
                await consumer.commit({partition: records[-1].offset + 1})
                forwarded += len(records)

    async def until(count: int) -> bool:
        return forwarded >= count

    await consumer.start()
    await producer.start()
    async with running(forward):
        seconds = await timed(
            lambda: _send_and_wait(bootstrap, [(source, events[0])], lambda: until(1)),
            lambda: produce_all(bootstrap, [(source, e) for e in events]),
            lambda: until(1 + len(events)),
        )
    await consumer.stop()
    await producer.stop()
    return Result("aiokafka passthrough", len(events), seconds)


async def scoring(
    bootstrap: str, database_url: str, name: str, leads: int, per_lead: int, processes: int = 1
) -> Result:
    """The scoring service as ``leadrelay run scoring`` runs it, on ``database_url``, in this
    process and ``processes - 1`` more (one consumer group), on fresh leads."""
    await upgrade_async(database_url)
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    runtime = await open_runtime(_settings(bootstrap, database_url, prefix))
    spec = build_service(runtime, load_definitions().scorecard)
    group = f"{prefix}{NAME}"

    def routed(batch: list[CloudEvent]) -> list[tuple[str, CloudEvent]]:
        return [(runtime.topic(topic_for_event_type(e.type)), e) for e in batch]

    async def until(count: int) -> bool:
        if processes == 1 and _handled(runtime) < count:
            return False
        if processes > 1 and await _inbox_rows(runtime, group) < count:
            return False
        return await runtime.store.outbox_backlog() == 0

    now = datetime.now(UTC)
    warm = workload(f"warm{prefix}", 4 * PARTITIONS, 1, now)  # every partition, every process
    events = workload(prefix, leads, per_lead, now)
    workers = [_worker(bootstrap, database_url, prefix) for _ in range(processes - 1)]
    try:
        async with running(lambda stop: run_services(runtime, [spec], stop)):
            await _members(bootstrap, group, processes)
            seconds = await timed(
                lambda: _send_and_wait(bootstrap, routed(warm), lambda: until(len(warm))),
                lambda: produce_all(bootstrap, routed(events)),
                lambda: until(len(warm) + len(events)),
            )
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
        await runtime.close()
    suffix = f", {processes} processes" if processes > 1 else ""
    return Result(f"scoring on {name}{suffix}", len(events), seconds)


def _settings(bootstrap: str, database_url: str, prefix: str) -> Settings:
    return load_settings(kafka_bootstrap=bootstrap, database_url=database_url,
                         topic_prefix=prefix, topic_partitions=PARTITIONS)  # fmt: skip


def _worker(bootstrap: str, database_url: str, prefix: str) -> subprocess.Popen[bytes]:
    """Another scoring process in the same consumer group (``--worker``), until terminated."""
    command = [sys.executable, "-m", "benchmarks.scoring_bench", "--worker", "--bootstrap",
               bootstrap, "--postgres-url", database_url, "--prefix", prefix]  # fmt: skip
    return subprocess.Popen(command)  # noqa: S603  # this interpreter, this module, our arguments


async def work(bootstrap: str, database_url: str, prefix: str) -> None:
    """A ``--worker``: the scoring service until SIGTERM."""
    runtime = await open_runtime(_settings(bootstrap, database_url, prefix))
    spec = build_service(runtime, load_definitions().scorecard)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await run_services(runtime, [spec], stop)
    finally:
        await runtime.close()


async def _members(bootstrap: str, group: str, processes: int) -> None:
    """Wait until every process has joined the group (else the first takes every partition
    and the timed run starts with a rebalance)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:

        async def joined() -> bool:
            [response] = await admin.describe_consumer_groups([group])
            [description] = response.groups
            state, members = description[2], description[5]
            return bool(state == "Stable" and len(members) == processes)

        await poll_until(joined)
    finally:
        await admin.close()


async def _inbox_rows(runtime: Runtime, group: str) -> int:
    """Events the group has applied, in every process (its inbox rows)."""
    await asyncio.sleep(0.05)
    async with runtime.store.read() as connection:
        query = select(func.count()).select_from(inbox).where(inbox.c.consumer == group)
        return int((await connection.execute(query)).scalar_one())


async def _send_and_wait(
    bootstrap: str, messages: list[tuple[str, CloudEvent]], done: Callable[[], Awaitable[bool]]
) -> None:
    await produce_all(bootstrap, messages)
    await poll_until(done)


def _handled(runtime: Runtime) -> float:
    return sum(sample.value for metric in runtime.registry.collect() if metric.name in HANDLED
               for sample in metric.samples if sample.name.endswith("_total"))  # fmt: skip


async def main(args: argparse.Namespace) -> list[Result]:
    events = workload(uuid.uuid4().hex[:6], args.leads, args.per_lead, datetime.now(UTC))
    with (
        broker(args.bootstrap) as bootstrap,
        postgres(args.postgres_url, start=args.postgres) as postgres_url,
        tempfile.TemporaryDirectory() as directory,
    ):
        # best of three: the first runs also warm up the broker's JIT, which would flatter us
        tries = [await passthrough(bootstrap, events) for _ in range(3)]
        results = [min(tries, key=lambda result: result.seconds)]
        sqlite_url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        size = (args.leads, args.per_lead)
        results.append(await scoring(bootstrap, sqlite_url, "SQLite", *size))
        if postgres_url:
            results.append(await scoring(bootstrap, postgres_url, "PostgreSQL", *size))
            if args.processes > 1:
                results.append(
                    await scoring(bootstrap, postgres_url, "PostgreSQL", *size, args.processes)
                )
        else:
            print("PostgreSQL skipped: pass --postgres or --postgres-url postgresql+asyncpg://...")
    return results


@contextlib.contextmanager
def postgres(url: str | None, *, start: bool) -> Iterator[str | None]:
    """The given PostgreSQL, a throwaway server from the test harness (``start``), or none."""
    if url or not start:
        yield url
        return
    from tests.harness.postgres import PostgresServer

    with PostgresServer() as server:
        yield server.url


def report(results: list[Result]) -> None:
    baseline = results[0]
    print(f"{'run':<40}{'events':>8}{'seconds':>10}{'events/s':>11}{'vs passthrough':>16}")
    for result in results:
        ratio = result.rate / baseline.rate
        print(f"{result.name:<40}{result.events:>8}{result.seconds:>10.2f}"
              f"{result.rate:>11.0f}{ratio:>15.1%}")  # fmt: skip
    postgres = [r for r in results if r.name.startswith("scoring on PostgreSQL")]
    if len(postgres) == 2:
        print(f"{postgres[1].name.split(', ')[1]} vs 1 on PostgreSQL:"
              f" {postgres[1].rate / postgres[0].rate:.2f}x")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scoring_bench",
        description=__doc__.split("\n")[0] if __doc__ else None,
    )
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default: start a broker)")
    parser.add_argument("--postgres-url", help="a PostgreSQL database URL (optional)")
    parser.add_argument(
        "--postgres", action="store_true", help="start a throwaway PostgreSQL (needs its binaries)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="also run scoring as this many processes on PostgreSQL (default 1: not)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument(
        "--leads",
        type=int,
        default=1000,
        help="distinct leads (default 1,000: 20,000 events, several seconds even for the "
        "passthrough; 2,000 events took it under half a second on a quiet machine)",
    )
    parser.add_argument(
        "--per-lead",
        type=int,
        default=20,
        help="events per lead: one form, the rest web activity (default 20)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # leader elections on new topics
    arguments = parse_args()
    if arguments.worker:
        asyncio.run(work(arguments.bootstrap, arguments.postgres_url, arguments.prefix))
    else:
        report(asyncio.run(main(arguments)))
