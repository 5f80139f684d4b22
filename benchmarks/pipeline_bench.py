"""Form submission over HTTP to ``lead_assigned`` on the topic: p50/p95/p99 at paced rates.

Run from the repository root::

    python -m benchmarks.pipeline_bench                          # both topologies, 50/200/500 per s
    python -m benchmarks.pipeline_bench --topology up --rates 50 --seconds 20
    python -m benchmarks.pipeline_bench --topology processes \\
        --bootstrap HOST:PORT --database-url postgresql+asyncpg://user:pass@host/db

Each lead is one demo-request form with a good fit (the scorecard's fast track), POSTed to
``/v1/events`` as a real source sends it: a CloudEvent signed with Standard Webhooks (the
install's own secret, as ``leadrelay simulate`` signs). Its latency is the Kafka timestamp of its
``lead_assigned`` record (CreateTime, set by hand-off's outbox relay on this machine) minus the
wall-clock time just before the request was written; leads are matched by lead key. Requests
are paced open-loop (each one leaves at its own time whatever the earlier ones are doing, up to
64 connections), so a slow server shows as latency, not as a slower sender. A lead not assigned
within ``--drain`` seconds after the last send counts as infinitely late, and the table says how
many of those sent were assigned. The ``202 p99`` column is the HTTP part alone: how long the
slowest forms waited for ingest's answer (with its retries after a 503).

Topologies:

- ``up``: ``leadrelay up`` as the README starts it, in a fresh directory (its embedded broker and
  SQLite): one process.
- ``processes``: Apache Kafka (the test harness's KRaft broker, or ``--bootstrap``) and PostgreSQL
  (the harness's, or ``--database-url``) with every service as its own ``leadrelay run
  <service>`` process, after ``leadrelay migrate``.

Beside each, the same-run baseline on the same broker: a bare endpoint (FastAPI, aiokafka with
acks=all, no authentication or validation) and as many bare consume -> produce -> commit hops as
a form crosses services before its assignment (scoring, then hand-off: two), in one process for
``up`` and one process each for ``processes``, mirroring the topology. Every rate runs the
baseline and then LeadRelay, after one warm-up of each. Both run on a roster without capacity
caps (the shipped demo roster's daily caps would send most leads of a long run to the fallback
queue). ``LEADRELAY_*`` variables of the calling shell are not passed on: each topology is
configured here alone. A figure, not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import re
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks.common import (
    Processes,
    bare_endpoint,
    bare_hop,
    broker,
    percentile,
    poll_until,
    postgres,
)
from leadrelay.app.definitions import default_definitions_text
from leadrelay.app.registry import SERVICES
from leadrelay.app.simulate import send_signed
from leadrelay.contracts.topics import EventType, Topic
from leadrelay.credentials import (
    DEV_SECRETS_FILE,
    generated_secrets,
    parse_secret,
    write_dev_secrets,
)
from leadrelay.identity import lead_key
from leadrelay.process import run_server, serve_http, stop_on_signals
from leadrelay.runtime.topics import ensure_topics
from leadrelay.settings import load_settings
from tests.harness.common import free_port, log_tail

REPOSITORY = Path(__file__).resolve().parents[1]
RATES = (50.0, 200.0, 500.0)
TOPOLOGIES = ("up", "processes")
HOPS = 2
"""Services a form crosses before its ``lead_assigned``: scoring, then hand-off."""
PARTITIONS = 6
CONNECTIONS = 64
WARM_UP_LEADS = 20
READY_WITHIN = 120.0
GOALS_MS = {("up", 50.0): 500.0, ("processes", 200.0): 100.0, ("processes", 500.0): 250.0}
"""Issue 13's p99 goals, by topology and rate."""
TOPOLOGY_NAMES = {"up": "leadrelay up", "processes": "Kafka + PostgreSQL, processes"}
COUNTRIES = ("US", "DE", "JP", "BR", "GB", "AU", "CA", "FR")
SIZES = (40, 350, 1500, 120, 800)
TITLES = ("VP Marketing", "Sales Manager", "Head of Sales", "Marketing Manager", "CTO")

log = logging.getLogger("benchmarks.pipeline_bench")


@dataclass(frozen=True)
class Form:
    """One lead's form submission, ready to send."""

    webhook_id: str
    email: str
    body: bytes


@dataclass(frozen=True)
class Target:
    """A pipeline under test: where forms go in, where their outcome comes out."""

    system: str
    port: int
    bootstrap: str
    topic: str
    outcome_type: str | None
    """The CloudEvent type that ends a lead's trip (None: any record on ``topic``)."""
    webhook_key: bytes
    match: Callable[[Form], str]
    """The record key a form's outcome carries on ``topic``."""


@dataclass
class Result:
    topology: str
    system: str
    rate: float
    sent: int
    accepted: int
    assigned: int
    send_seconds: float
    """From the first request sent to the last (not answered): the achieved sending rate."""
    latencies_ms: list[float] = field(repr=False)
    """One per form sent; ``inf`` for one never assigned."""
    answers_ms: list[float] = field(repr=False)
    """How long each accepted form waited for its ``202``: the HTTP part of its latency."""

    @property
    def sent_rate(self) -> float:
        """Requests started per second: the rate asked for, unless the sender fell behind."""
        return (self.sent - 1) / max(self.send_seconds, 1e-3)

    def percentile(self, fraction: float) -> float:
        """Of the latencies, by nearest rank (:func:`benchmarks.common.percentile`)."""
        return percentile(self.latencies_ms, fraction)


def forms(run: str, count: int) -> list[Form]:
    """Demo requests from good-fit people all over the world, each a new lead."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    made = []
    for n in range(count):
        email = f"lead{n}.{run}@company{n % 97}.example"
        event = {
            "specversion": "1.0",
            "id": f"bench-{run}-{n}",
            "source": "leadrelay-pipeline-bench",
            "type": EventType.FORM_SUBMITTED.value,
            "time": now,
            "data": {
                "email": email,
                "anonymous_id": f"bench-{run}-{n}",
                "form_id": "demo-request",
                "occurred_at": now,
                "source": "generic",
                "profile": {
                    "first_name": f"Lead{n}",
                    "last_name": "Example",
                    "company": f"Company {n % 97}",
                    "job_title": TITLES[n % len(TITLES)],
                    "company_size": SIZES[n % len(SIZES)],
                    "industry": "software",
                    "country": COUNTRIES[n % len(COUNTRIES)],
                },
            },
        }
        made.append(Form(f"msg_bench-{run}-{n}", email, json.dumps(event).encode()))
    return made


class HttpPool:
    """Keep-alive HTTP/1.1 connections to one local server: a load generator cheap enough (a
    few writes and reads per request) not to be what is measured on a 2-core machine, where a
    full client library would take a good part of a core at 500 requests/s."""

    def __init__(self, port: int, size: int) -> None:
        self._port = port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._free = asyncio.Semaphore(size)

    async def post(self, path: str, headers: Mapping[str, str], body: bytes) -> int:
        """The response status; a kept-alive connection the server closed is opened anew."""
        lines = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", f"content-length: {len(body)}"]
        request = "\r\n".join([*lines, *(f"{k}: {v}" for k, v in headers.items()), "", ""])
        async with self._free:
            for reused in (True, False):
                connection = self._idle.pop() if reused and self._idle else await self._open()
                try:
                    connection[1].write(request.encode() + body)
                    status, keep = await _response(connection[0])
                except (ConnectionError, asyncio.IncompleteReadError):
                    connection[1].close()
                    if reused:
                        continue
                    raise
                except BaseException:
                    connection[1].close()
                    raise
                if keep:
                    self._idle.append(connection)
                else:
                    connection[1].close()
                return status
        raise AssertionError("unreachable")

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self._port)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _reader, writer in idle:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response (status line, headers, a Content-Length body): status, keep-alive."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status, length, keep = int(status_line.split()[1]), 0, True
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            keep = value.strip().lower() != b"close"
    await reader.readexactly(length)
    return status, keep


class Watcher:
    """Tails the outcome topic from its end: record key -> Kafka timestamp (ms) of the first
    outcome record, so a lead's trip ends when its outcome is on the topic."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self.seen: dict[str, int] = {}
        self._consumer = AIOKafkaConsumer(
            target.topic,
            bootstrap_servers=target.bootstrap,
            group_id=None,
            auto_offset_reset="latest",
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watcher:
        await self._consumer.start()
        await poll_until(self._assigned)
        for partition in self._consumer.assignment():
            await self._consumer.position(partition)  # pins "latest" before anything is sent
        self._task = asyncio.create_task(self._tail())
        return self

    async def _assigned(self) -> bool:
        return bool(self._consumer.assignment())

    async def __aexit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _tail(self) -> None:
        wanted = self._target.outcome_type
        while True:
            for records in (await self._consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    if wanted is not None and json.loads(record.value or b"{}")["type"] != wanted:
                        continue
                    self.seen.setdefault((record.key or b"").decode(), record.timestamp)

    async def until(self, keys: Sequence[str], within: float) -> None:
        """Return once every key has its outcome, or after ``within`` seconds."""

        async def all_seen() -> bool:
            return all(key in self.seen for key in keys)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(poll_until(all_seen), within)


async def measure(
    topology: str, target: Target, rate: float, seconds: float, drain: float
) -> Result:
    """Send ``rate`` forms a second for ``seconds``; wait for their assignments."""
    batch = forms(uuid.uuid4().hex[:8], max(1, round(rate * seconds)))
    async with Watcher(target) as watcher:
        pool = HttpPool(target.port, CONNECTIONS)
        try:
            sends, send_seconds = await send_paced(pool, target.webhook_key, batch, rate)
        finally:
            await pool.close()
        accepted = [(form, sent) for form, sent in zip(batch, sends, strict=True) if sent]
        keys = {target.match(form): sent[0] for form, sent in accepted}
        await watcher.until(list(keys), drain)
    latencies = [
        float(watcher.seen[key] - at) if key in watcher.seen else math.inf
        for key, at in keys.items()
    ] + [math.inf] * (len(batch) - len(keys))
    assigned = sum(1 for key in keys if key in watcher.seen)
    answers = [sent[1] for _form, sent in accepted]
    return Result(
        topology, target.system, rate, len(batch), len(keys), assigned, send_seconds, latencies,
        answers,
    )  # fmt: skip


async def send_paced(
    pool: HttpPool, key: bytes, batch: Sequence[Form], rate: float
) -> tuple[list[tuple[int, float] | None], float]:
    """POST each form at its own moment (``n / rate`` after the first): for each accepted one
    its send time (ms) and how long its ``202`` took (ms), None for one refused; and the
    seconds from the first send to the last.
    A 503 is retried as a sender would, from the same send time, so the wait counts in its
    latency."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    sends = []
    for n, form in enumerate(batch):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sends.append(asyncio.create_task(send_one(pool, key, form)))
    dispatched = loop.time() - start
    return list(await asyncio.gather(*sends)), dispatched


async def send_one(pool: HttpPool, key: bytes, form: Form) -> tuple[int, float] | None:
    """Send ``form`` as ``leadrelay simulate`` sends an event (its signing and 503 back-off)."""
    sent_at, started = int(time.time() * 1000), time.perf_counter()

    async def post(headers: dict[str, str]) -> int:
        return await pool.post("/v1/events", headers, form.body)

    status = await send_signed(post, int, key, form.webhook_id, form.body)
    if status != 202:
        log.warning("form %s refused with %s", form.webhook_id, status)
        return None
    return sent_at, (time.perf_counter() - started) * 1000


async def warm_up(topology: str, target: Target) -> None:
    """A few leads through, so group joins and first connections are not in the figures."""
    result = await measure(topology, target, 10.0, WARM_UP_LEADS / 10.0, READY_WITHIN)
    if result.assigned < result.sent:
        raise RuntimeError(
            f"{target.system} ({topology}) assigned {result.assigned} of {result.sent} warm-up"
            f" leads within {READY_WITHIN:.0f}s"
        )


def bench_definitions(directory: Path) -> Path:
    """The shipped definitions with every rep's capacity cap removed (see the module doc)."""
    document = yaml.safe_load(default_definitions_text())
    for rep in document["roster"]["reps"]:
        rep.pop("capacity", None)
    path = directory / "bench-definitions.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def clean_environment() -> dict[str, str]:
    """The caller's environment without ``LEADRELAY_*``: this script sets all it means."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LEADRELAY_")}


def leadrelay(*args: str) -> list[str]:
    return [sys.executable, "-m", "leadrelay", *args]


async def wait_ready(processes: Processes, port: int, log_path: Path) -> None:
    """Poll ``/readyz`` on ``port`` until 200; fail with the log's tail if a process exited."""
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if processes.exited():
            raise RuntimeError(f"{processes.exited()} exited:\n{log_tail(log_path)}")
        with contextlib.suppress(OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            if await _get(port, "/readyz") == 200:
                return
        await asyncio.sleep(0.3)
    raise RuntimeError(f"not ready on port {port} in {READY_WITHIN:.0f}s:\n{log_tail(log_path)}")


async def _get(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
        writer.write(request.encode())
        status, _keep = await _response(reader)
        return status
    finally:
        writer.close()


def leadrelay_target(bootstrap: str, prefix: str, port: int, workdir: Path) -> Target:
    """LeadRelay as the install's own secrets (``.leadrelay/dev-secrets.env``) configure it."""
    settings = load_settings(workdir / DEV_SECRETS_FILE)
    secret = settings.lead_key_secret.get_secret_value()
    return Target(
        "LeadRelay",
        port,
        bootstrap,
        f"{prefix}{Topic.ASSIGNMENTS.value}",
        EventType.LEAD_ASSIGNED.value,
        parse_secret(settings.webhook_secrets[0].get_secret_value()),
        lambda form: lead_key(form.email, secret),
    )


async def announced_broker(log_path: Path) -> str:
    """The embedded broker ``leadrelay up`` names in its log; the line may follow readiness."""
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        text = await asyncio.to_thread(log_path.read_text, errors="replace")
        found = re.search(r"broker\s+(\S+:\d+)", text)
        if found is not None:
            return found.group(1)
        await asyncio.sleep(0.1)
    raise RuntimeError(f"leadrelay up named no broker:\n{log_tail(log_path)}")


@contextlib.asynccontextmanager
async def up_topology(processes: Processes, workdir: Path) -> AsyncIterator[list[Target]]:
    """``leadrelay up`` in a fresh directory, and the bare pipeline in one process beside it."""
    port = free_port()
    env = clean_environment() | {
        "LEADRELAY_HTTP_PORT": str(port),
        "LEADRELAY_METRICS_PORT": str(free_port()),
        "LEADRELAY_DEFINITIONS": str(bench_definitions(workdir)),
    }
    log_path = workdir / "up.log"
    processes.start("leadrelay up", leadrelay("up"), cwd=workdir, env=env, log=log_path)
    await wait_ready(processes, port, log_path)
    bootstrap = await announced_broker(log_path)
    bare = await bare_pipeline(processes, workdir, bootstrap, separate=False, idempotence=False)
    yield [bare, leadrelay_target(bootstrap, "leadrelay.", port, workdir)]


@contextlib.asynccontextmanager
async def processes_topology(
    processes: Processes, workdir: Path, bootstrap: str, database_url: str
) -> AsyncIterator[list[Target]]:
    """Every service as ``leadrelay run <service>`` on Kafka and PostgreSQL, and the bare
    pipeline as one process per endpoint and hop beside it."""
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    write_dev_secrets(workdir / DEV_SECRETS_FILE, generated_secrets())
    env = clean_environment() | {
        "LEADRELAY_KAFKA_BOOTSTRAP": bootstrap,
        "LEADRELAY_DATABASE_URL": database_url,
        "LEADRELAY_TOPIC_PREFIX": prefix,
        "LEADRELAY_DEFINITIONS": str(bench_definitions(workdir)),
    }
    migrate_log = workdir / "migrate.log"
    migrate = leadrelay("migrate")
    status = await asyncio.to_thread(
        processes.run, "migrate", migrate, cwd=workdir, env=env, log=migrate_log
    )
    if status != 0:
        raise RuntimeError(f"leadrelay migrate failed:\n{log_tail(migrate_log)}")
    port = free_port()
    started = []
    for service in SERVICES:
        metrics = free_port()
        service_env = env | {"LEADRELAY_METRICS_PORT": str(metrics)}
        service_env["LEADRELAY_HTTP_PORT"] = str(port)  # only ingest listens on it
        log_path = workdir / f"{service}.log"
        processes.start(
            service, leadrelay("run", service), cwd=workdir, env=service_env, log=log_path
        )
        started.append((metrics, log_path))
    for metrics, log_path in started:
        await wait_ready(processes, metrics, log_path)
    bare = await bare_pipeline(processes, workdir, bootstrap, separate=True, idempotence=True)
    yield [bare, leadrelay_target(bootstrap, prefix, port, workdir)]


async def bare_pipeline(
    processes: Processes, workdir: Path, bootstrap: str, *, separate: bool, idempotence: bool
) -> Target:
    """The bare endpoint and :data:`HOPS` bare hops, in one process or one process each."""
    prefix = f"bare{uuid.uuid4().hex[:6]}."
    topics = [f"{prefix}{n}" for n in range(HOPS + 1)]
    await ensure_topics(bootstrap, topics, partitions=PARTITIONS)
    roles = ["endpoint", *(f"hop{n}" for n in range(1, HOPS + 1))]
    port = free_port()
    env = clean_environment() | {"PYTHONPATH": str(REPOSITORY)}
    common = ["--bootstrap", bootstrap, "--bare-topics", ",".join(topics), "--bare-port", str(port)]
    if idempotence:
        common.append("--bare-idempotence")
    log_path = workdir / "bare.log"
    for group in [[role] for role in roles] if separate else [roles]:
        argv = [sys.executable, "-m", "benchmarks.pipeline_bench", "--bare", ",".join(group)]
        processes.start(f"bare {group}", argv + common, cwd=workdir, env=env, log=log_path)
    await wait_ready(processes, port, log_path)
    webhook_key = b"unused: the bare endpoint checks no signature"
    return Target(
        f"bare endpoint + {HOPS} hops", port, bootstrap, topics[-1], None, webhook_key,
        lambda form: form.webhook_id,
    )  # fmt: skip


async def serve_bare(args: argparse.Namespace) -> None:
    """The ``--bare`` roles of one process, until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    stop_on_signals(stop)
    topics: list[str] = args.bare_topics.split(",")
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks="all",
        linger_ms=2,
        enable_idempotence=args.bare_idempotence,
    )
    await producer.start()
    consumers: list[AIOKafkaConsumer] = []
    try:
        tasks = []
        for role in args.bare.split(","):
            if role == "endpoint":
                app = bare_endpoint(producer, topics[0])
                tasks.append(serve_http(app, "127.0.0.1", args.bare_port, stop))
                continue
            hop = int(role.removeprefix("hop"))
            consumer = AIOKafkaConsumer(
                topics[hop - 1],
                bootstrap_servers=args.bootstrap,
                group_id=f"{topics[0]}{role}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=200,
            )
            await consumer.start()
            consumers.append(consumer)
            tasks.append(bare_hop(consumer, producer, topics[hop], stop))
        await asyncio.gather(*tasks)
    finally:
        for consumer in consumers:
            await consumer.stop()
        await producer.stop()


async def measure_topology(
    topology: str,
    processes: Processes,
    workdir: Path,
    args: argparse.Namespace,
    infra: list[str],
    results: list[Result],
) -> None:
    """Warm both pipelines up, then per rate the baseline and LeadRelay, one after the other;
    each result goes into ``results`` at once, so an interrupted run still reports it."""
    if topology == "up":
        opened = up_topology(processes, workdir)
    else:
        opened = processes_topology(processes, workdir, infra[0], infra[1])
    async with opened as targets:
        for target in targets:
            await warm_up(topology, target)
        for rate in args.rates:
            for target in targets:
                if processes.exited():
                    raise RuntimeError(f"{processes.exited()} exited; logs in {workdir}")
                result = await measure(topology, target, rate, args.seconds, args.drain)
                print(_row(result), file=sys.stderr, flush=True)
                results.append(result)


def run_topology(topology: str, args: argparse.Namespace, results: list[Result]) -> None:
    """Start what ``topology`` needs, measure it into ``results``, stop all it started."""
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pipeline-bench-")))
        infra: list[str] = []
        if topology == "processes":
            infra = [
                stack.enter_context(broker(args.bootstrap)),
                stack.enter_context(postgres(args.database_url)),
            ]
        # stopped first, before the servers; `up` may drain for 15 s before it stops
        processes = stack.enter_context(Processes(grace=60.0))
        asyncio.run(measure_topology(topology, processes, workdir, args, infra, results))


def _ms(value: float) -> str:
    return "lost" if math.isinf(value) else f"{value:.0f}"


def _row(result: Result) -> str:
    return (
        f"{TOPOLOGY_NAMES[result.topology]:<31}{result.system:<22}{result.rate:>6.0f}"
        f"{result.sent_rate:>8.0f}{result.sent:>7}{result.accepted:>7}"
        f"{result.assigned:>9}{_ms(result.percentile(0.5)):>8}{_ms(result.percentile(0.95)):>8}"
        f"{_ms(result.percentile(0.99)):>8}{_ms(percentile(result.answers_ms, 0.99)):>9}"
    )


def report(results: Sequence[Result], args: argparse.Namespace) -> None:
    """The table, and per LeadRelay row its p99 against the bare p99 of the same rate."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"form -> lead_assigned, {args.seconds:g} s per rate, {os.cpu_count()} CPUs,"
        f" {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average now {load}"
    )
    print(
        f"{'topology':<31}{'system':<22}{'rate':>6}{'sent/s':>8}{'sent':>7}{'202':>7}"
        f"{'assigned':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'202 p99':>9}{'p99 vs bare':>13}"
        f"{'goal':>16}"
    )
    bare = {(r.topology, r.rate): r for r in results if r.system != "LeadRelay"}
    for result in results:
        line = _row(result)
        baseline = bare.get((result.topology, result.rate))
        if result.system == "LeadRelay" and baseline is not None:
            ratio = result.percentile(0.99) / max(baseline.percentile(0.99), 1.0)
            line += f"{ratio:>12.1f}x" if not math.isinf(ratio) else f"{'-':>13}"
            goal = GOALS_MS.get((result.topology, result.rate))
            if goal is not None:
                met = result.percentile(0.99) < goal and result.assigned == result.sent
                line += f"{'< ' + f'{goal:.0f}' + ' ms':>10} {'met' if met else 'MISSED':>5}"
        print(line)


def _rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def _topologies(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in chosen if name not in TOPOLOGIES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown topology {unknown}; choose from {TOPOLOGIES}")
    return chosen


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline_bench",
        description=__doc__.split("\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--rates", type=_rates, default=list(RATES), help="leads per second, e.g. 50,200,500"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of sending per rate")
    parser.add_argument(
        "--topology", type=_topologies, default=list(TOPOLOGIES), help="up, processes or both"
    )
    parser.add_argument(
        "--drain", type=float, default=60.0, help="seconds to wait for the last assignments"
    )
    parser.add_argument("--bootstrap", help="Kafka for `processes` (default: start a broker)")
    parser.add_argument(
        "--database-url", help="PostgreSQL for `processes` (default: start a server)"
    )
    parser.add_argument("--bare", help=argparse.SUPPRESS)  # internal: run bare roles
    parser.add_argument("--bare-topics", help=argparse.SUPPRESS)
    parser.add_argument("--bare-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--bare-idempotence", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so every process started here is stopped."""
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # leader elections on new topics
    if args.bare:
        run_server(serve_bare(args))  # on uvloop, as LeadRelay's own processes run
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    results: list[Result] = []
    try:
        for topology in args.topology:
            run_topology(topology, args, results)
    except KeyboardInterrupt:
        print("interrupted; every process started here was stopped", file=sys.stderr)
        return 130
    finally:
        if results:
            report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
