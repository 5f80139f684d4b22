"""Signed ``POST /v1/events`` per second on ingest, beside a bare FastAPI + aiokafka endpoint.

Run from the repository root::

    python -m benchmarks.ingest_bench                          # starts a Kafka broker, SQLite
    python -m benchmarks.ingest_bench --bootstrap HOST:PORT --postgres-url postgresql+asyncpg://...

Both servers run as their own processes on the same broker in the same run: ingest as deployed
(``leadrelay run ingest``, its replay history on SQLite or the given PostgreSQL), and the bare
endpoint of :func:`benchmarks.common.bare_endpoint` (served as ``pipeline_bench`` serves it:
aiokafka with acks=all and idempotence, ingest's producer settings), which moves each event to
Kafka before answering 202, with no signature check, mapping or history. The load generator is
this process (``pipeline_bench``'s keep-alive HTTP/1.1 pool), so it never shares an event loop
with a server. Every request is signed as a real source signs it (Standard Webhooks through the
product's own ``sign_standard_webhook``: a fresh ``webhook-id``, the current timestamp); the bare
endpoint receives the same headers and bodies. Each measurement is a warm-up followed by a
fixed window; the table prints requests/s, events/s, p50/p99 latency (nearest rank, see
:func:`benchmarks.common.percentile`), the ratio to the bare endpoint and every 5xx (there
must be none). A figure, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import Processes, broker, percentile
from benchmarks.pipeline_bench import HttpPool, clean_environment, leadrelay, wait_ready
from leadrelay.credentials import (
    DEV_SECRETS_FILE,
    generated_secrets,
    parse_secret,
    write_dev_secrets,
)
from leadrelay.runtime.topics import ensure_topics
from leadrelay.settings import load_settings
from services.ingest.domain.signatures import sign_standard_webhook
from tests.harness.common import free_port, log_tail

CONNECTIONS = 32
BATCH = 100
CLOUDEVENT_JSON = "application/cloudevents+json"
BATCH_JSON = "application/cloudevents-batch+json"
ROUTE = "/v1/events"
ACTIONS = ("page_view", "pricing_page_view", "email_click", "content_download")
PARTITIONS = 6


@dataclass
class Tally:
    """What one measurement saw: latencies of the requests that started inside the window."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Result:
    endpoint: str
    shape: str
    events_per_request: int
    seconds: float
    tally: Tally

    @property
    def requests_per_second(self) -> float:
        return len(self.tally.latencies) / self.seconds

    @property
    def events_per_second(self) -> float:
        return self.requests_per_second * self.events_per_request

    def percentile(self, fraction: float) -> float:
        return percentile(self.tally.latencies, fraction)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.tally.statuses.items() if status >= 500)

    @property
    def refused(self) -> int:
        return sum(n for status, n in self.tally.statuses.items() if 400 <= status < 500)


class Bodies:
    """Distinct signed requests: each event a new id, a few leads per batch, emails included."""

    def __init__(self, key: bytes, events: int) -> None:
        self.key = key
        self.events = events
        self.counter = 0
        self.run = uuid.uuid4().hex[:8]

    def next_request(self) -> tuple[dict[str, str], bytes]:
        """The headers and body of the next request, signed now."""
        items = [self._event() for _ in range(self.events)]
        body = (items[0] if self.events == 1 else "[" + ",".join(items) + "]").encode()
        webhook_id = f"msg_{self.run}_{self.counter}"
        timestamp = int(time.time())
        headers = {
            "content-type": CLOUDEVENT_JSON if self.events == 1 else BATCH_JSON,
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard_webhook(self.key, webhook_id, timestamp, body),
        }
        return headers, body

    def _event(self) -> str:
        self.counter += 1
        n = self.counter
        return json.dumps(
            {
                "specversion": "1.0",
                "id": f"{self.run}-{n}",
                "source": "https://www.example.com/tracker",
                "type": "leadrelay.web_activity.v1",
                "data": {
                    "email": f"Visitor{n % 977}@Company{n % 53}.example",
                    "action": ACTIONS[n % len(ACTIONS)],
                    "url": f"https://www.example.com/p/{n % 101}",
                    "occurred_at": "2026-11-24T09:00:00Z",
                },
            }
        )


async def load(
    port: int, bodies: Bodies, connections: int, warm_up: float, seconds: float
) -> Tally:
    """``connections`` clients sending back to back; only requests started in the window count."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    window_start = loop.time() + warm_up
    window_end = window_start + seconds
    pool = HttpPool(port, connections)

    async def client() -> None:
        while (started := loop.time()) < window_end:
            headers, body = bodies.next_request()
            sent_at = loop.time()
            try:
                status = await pool.post(ROUTE, headers, body)
            except (OSError, asyncio.IncompleteReadError) as error:
                tally.failures[type(error).__name__] += 1
                continue
            tally.statuses[status] += 1
            if started >= window_start and status == 202:
                tally.latencies.append(loop.time() - sent_at)

    try:
        await asyncio.gather(*(client() for _ in range(connections)))
    finally:
        await pool.close()
    return tally


def measure(name: str, port: int, key: bytes, events: int, args: argparse.Namespace) -> Result:
    bodies = Bodies(key, events)
    tally = asyncio.run(load(port, bodies, args.connections, args.warm_up, args.seconds))
    shape = "single" if events == 1 else f"batch of {events}"
    return Result(name, shape, events, args.seconds, tally)


async def start_servers(
    processes: Processes, workdir: Path, bootstrap: str, database_url: str
) -> tuple[int, int, bytes]:
    """Ingest (after ``leadrelay migrate``) and the bare endpoint, each in its own process,
    both ready: ingest's port, the bare endpoint's port and the install's webhook key."""
    write_dev_secrets(workdir / DEV_SECRETS_FILE, generated_secrets())
    ingest_port, metrics_port, bare_port = free_port(), free_port(), free_port()
    env = clean_environment() | {
        "LEADRELAY_KAFKA_BOOTSTRAP": bootstrap,
        "LEADRELAY_DATABASE_URL": database_url,
        "LEADRELAY_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}.",
        "LEADRELAY_HTTP_PORT": str(ingest_port),
        "LEADRELAY_METRICS_PORT": str(metrics_port),
    }
    migrate_log = workdir / "migrate.log"
    status = await asyncio.to_thread(
        processes.run, "migrate", leadrelay("migrate"), cwd=workdir, env=env, log=migrate_log
    )
    if status != 0:
        raise RuntimeError(f"leadrelay migrate failed:\n{log_tail(migrate_log)}")
    bare_topic = f"bare{uuid.uuid4().hex[:6]}.events"
    await ensure_topics(bootstrap, [bare_topic], partitions=PARTITIONS)
    bare = [sys.executable, "-m", "benchmarks.pipeline_bench", "--bare", "endpoint",
            "--bootstrap", bootstrap, "--bare-topics", bare_topic, "--bare-port", str(bare_port),
            "--bare-idempotence"]  # fmt: skip
    bare_log, ingest_log = workdir / "bare.log", workdir / "ingest.log"
    processes.start("bare endpoint", bare, cwd=workdir, env=clean_environment(), log=bare_log)
    processes.start("ingest", leadrelay("run", "ingest"), cwd=workdir, env=env, log=ingest_log)
    await wait_ready(processes, bare_port, bare_log)
    await wait_ready(processes, metrics_port, ingest_log)
    settings = load_settings(workdir / DEV_SECRETS_FILE)
    return ingest_port, bare_port, parse_secret(settings.webhook_secrets[0].get_secret_value())


def run(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ingest-bench-")))
        bootstrap = stack.enter_context(broker(args.bootstrap))
        database_url = args.postgres_url or f"sqlite+aiosqlite:///{workdir / 'ingest.db'}"
        processes = stack.enter_context(Processes())
        ingest_port, bare_port, key = asyncio.run(
            start_servers(processes, workdir, bootstrap, database_url)
        )
        for events in (1, args.batch):
            for _ in range(args.rounds):
                results.append(measure("bare FastAPI + aiokafka", bare_port, key, events, args))
                results.append(
                    measure("ingest (leadrelay run ingest)", ingest_port, key, events, args)
                )
        if any(r.server_errors or r.refused for r in results):
            print("ingest log tail:\n" + log_tail(workdir / "ingest.log"))
    return results


def report(results: list[Result]) -> None:
    header = (
        f"{'endpoint':<31}{'shape':<14}{'req/s':>8}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'vs bare':>9}{'5xx':>6}{'4xx':>6}{'conn err':>9}"
    )
    print(header)
    bare: Result | None = None
    for result in results:
        if result.endpoint.startswith("bare"):
            bare = result
        ratio = (
            result.requests_per_second / bare.requests_per_second
            if bare and bare.requests_per_second
            else float("nan")
        )
        print(
            f"{result.endpoint:<31}{result.shape:<14}{result.requests_per_second:>8.0f}"
            f"{result.events_per_second:>10.0f}{result.percentile(0.5) * 1000:>9.1f}"
            f"{result.percentile(0.99) * 1000:>9.1f}{ratio:>9.1%}{result.server_errors:>6}"
            f"{result.refused:>6}{sum(result.tally.failures.values()):>9}"
        )
    for result in results:
        unexpected = {s: n for s, n in result.tally.statuses.items() if s != 202}
        if unexpected or result.tally.failures:
            print(f"{result.endpoint} {result.shape}: statuses {unexpected}, "
                  f"connection errors {dict(result.tally.failures)}")  # fmt: skip
    singles = [r.requests_per_second for r in results if r.events_per_request == 1]
    if singles:
        print(f"(median single req/s over all rows: {statistics.median(singles):.0f})")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest_bench",
        description=__doc__.split("\n")[0] if __doc__ else None,
    )
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default: start a broker)")
    parser.add_argument("--postgres-url", help="ingest's database (default: a SQLite file)")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--batch", type=int, default=BATCH, help="events per batch request")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warm-up", type=float, default=3.0, help="unmeasured load first")
    parser.add_argument("--rounds", type=int, default=1, help="bare/ingest pairs per shape")
    return parser.parse_args()


if __name__ == "__main__":
    report(run(parse_args()))
