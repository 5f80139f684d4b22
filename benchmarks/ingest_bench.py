"""Signed ``POST /v1/events`` per second on ingest, beside a bare FastAPI + aiokafka endpoint.

Run from the repository root::

    python -m benchmarks.ingest_bench                          # starts a Kafka broker, SQLite
    python -m benchmarks.ingest_bench --bootstrap HOST:PORT --postgres-url postgresql+asyncpg://...

Both servers run as their own uvicorn processes on the same broker in the same run: ingest as
deployed (``leadrelay run ingest``, its replay history on SQLite or the given PostgreSQL), and a
bare endpoint that decodes the JSON and produces each event with aiokafka (acks=all, the same
producer settings) before answering 202, with no signature check, mapping or history. The load
generator is this process (a small raw HTTP/1.1 client on keep-alive connections), so it never
shares an event loop with a server. Every request is signed as a real source signs it (Standard
Webhooks: a fresh ``webhook-id``, the current timestamp, HMAC-SHA256 of the body), the bare
endpoint receives the same headers and bodies. Each measurement is a warm-up followed by a
fixed window; the table prints requests/s, events/s, p50/p99 latency, the ratio to the bare
endpoint and every 5xx (there must be none). A figure, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from benchmarks.common import broker, percentile

CONNECTIONS = 32
BATCH = 100
CLOUDEVENT_JSON = "application/cloudevents+json"
BATCH_JSON = "application/cloudevents-batch+json"
ROUTE = "/v1/events"
ACTIONS = ("page_view", "pricing_page_view", "email_click", "content_download")


# --- the bare endpoint (run in its own process: ``--serve-bare PORT``) --------------------------


def serve_bare(port: int, bootstrap: str, topic: str) -> None:
    """FastAPI + aiokafka, nothing else: what moving the bytes into Kafka costs."""
    producers: list[AIOKafkaProducer] = []

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        producer = AIOKafkaProducer(  # the settings of ingest's producer
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2
        )
        await producer.start()
        producers.append(producer)
        yield
        await producer.stop()

    app = FastAPI(lifespan=lifespan)

    @app.post(ROUTE, status_code=202)
    async def post_events(request: Request) -> JSONResponse:
        raw = json.loads(await request.body())
        items = raw if isinstance(raw, list) else [raw]
        producer = producers[0]
        sent = [
            await producer.send(
                topic, json.dumps(item).encode(), key=str(item["data"]["email"]).encode()
            )
            for item in items
        ]
        await asyncio.gather(*sent)
        return JSONResponse({"accepted": len(items)}, status_code=202)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# --- the load generator --------------------------------------------------------------------------


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

    def next_request(self, host: str) -> bytes:
        items = [self._event() for _ in range(self.events)]
        body = (items[0] if self.events == 1 else "[" + ",".join(items) + "]").encode()
        webhook_id = f"msg_{self.run}_{self.counter}"
        timestamp = int(time.time())
        content = f"{webhook_id}.{timestamp}.".encode() + body
        signature = base64.b64encode(hmac.new(self.key, content, hashlib.sha256).digest())
        media_type = CLOUDEVENT_JSON if self.events == 1 else BATCH_JSON
        head = (
            f"POST {ROUTE} HTTP/1.1\r\nhost: {host}\r\ncontent-type: {media_type}\r\n"
            f"content-length: {len(body)}\r\nwebhook-id: {webhook_id}\r\n"
            f"webhook-timestamp: {timestamp}\r\nwebhook-signature: v1,{signature.decode()}\r\n\r\n"
        )
        return head.encode() + body

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


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes
) -> int:
    """One request on a keep-alive connection; the status once the whole answer was read."""
    writer.write(payload)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def load(
    port: int, bodies: Bodies, connections: int, warm_up: float, seconds: float
) -> Tally:
    """``connections`` clients sending back to back; only requests started in the window count."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    window_start = loop.time() + warm_up
    window_end = window_start + seconds
    host = f"127.0.0.1:{port}"

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (started := loop.time()) < window_end:
                payload = bodies.next_request(host)
                sent_at = loop.time()
                try:
                    status = await _request(reader, writer, payload)
                except (OSError, asyncio.IncompleteReadError) as error:
                    tally.failures[type(error).__name__] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                tally.statuses[status] += 1
                if started >= window_start and status == 202:
                    tally.latencies.append(loop.time() - sent_at)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    return tally


# --- processes -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {within:.0f}s")


@contextlib.contextmanager
def process(argv: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    """A server process, stopped (SIGTERM, then SIGKILL) when the block ends."""
    with log.open("wb") as output:
        child = subprocess.Popen(  # noqa: S603 - our own interpreter, our own arguments
            argv, env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            try:
                wait_listening(port, child)
            except RuntimeError:
                output.flush()
                print(log.read_text()[-3000:], file=sys.stderr)
                raise
            yield
        finally:
            child.terminate()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def leadrelay_env(bootstrap: str, database_url: str, secret: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADRELAY_")}
    env.update(
        LEADRELAY_KAFKA_BOOTSTRAP=bootstrap,
        LEADRELAY_DATABASE_URL=database_url,
        LEADRELAY_TOPIC_PREFIX=f"bench{uuid.uuid4().hex[:6]}.",
        LEADRELAY_WEBHOOK_SECRETS=json.dumps([secret]),
        LEADRELAY_HTTP_PORT=str(port),
        LEADRELAY_METRICS_PORT=str(free_port()),
        LEADRELAY_LEAD_KEY_SECRET=secrets.token_urlsafe(32),
    )
    return env


def measure(name: str, port: int, key: bytes, events: int, args: argparse.Namespace) -> Result:
    bodies = Bodies(key, events)
    tally = asyncio.run(load(port, bodies, args.connections, args.warm_up, args.seconds))
    shape = "single" if events == 1 else f"batch of {events}"
    return Result(name, shape, events, args.seconds, tally)


def run(args: argparse.Namespace) -> list[Result]:
    secret_bytes = secrets.token_bytes(32)
    secret = "whsec_" + base64.b64encode(secret_bytes).decode()
    python = sys.executable
    results: list[Result] = []
    with broker(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        database_url = args.postgres_url or f"sqlite+aiosqlite:///{workdir / 'ingest.db'}"
        ingest_port, bare_port = free_port(), free_port()
        env = leadrelay_env(bootstrap, database_url, secret, ingest_port)
        subprocess.run([python, "-m", "leadrelay", "migrate"], env=env, check=True,  # noqa: S603
                       stdout=subprocess.DEVNULL)  # fmt: skip
        bare_topic = f"bench{uuid.uuid4().hex[:6]}.bare"
        _create_topic(bootstrap, bare_topic)
        bare_argv = [python, "-m", "benchmarks.ingest_bench", "--serve-bare", str(bare_port),
                     "--bootstrap", bootstrap, "--topic", bare_topic]  # fmt: skip
        ingest_argv = [python, "-m", "leadrelay", "run", "ingest"]
        with (
            process(bare_argv, dict(os.environ), bare_port, workdir / "bare.log"),
            process(ingest_argv, env, ingest_port, workdir / "ingest.log"),
        ):
            for events in (1, args.batch):
                for _ in range(args.rounds):
                    results.append(measure("bare FastAPI + aiokafka", bare_port,
                                           secret_bytes, events, args))  # fmt: skip
                    results.append(measure("ingest (leadrelay run ingest)", ingest_port,
                                           secret_bytes, events, args))  # fmt: skip
        if any(r.server_errors or r.refused for r in results):
            print("ingest log tail:\n" + (workdir / "ingest.log").read_text()[-3000:])
    return results


def _create_topic(bootstrap: str, topic: str) -> None:
    from leadrelay.runtime.topics import ensure_topics

    asyncio.run(ensure_topics(bootstrap, [topic], partitions=6))


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
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_bare:
        serve_bare(arguments.serve_bare, arguments.bootstrap, arguments.topic)
    else:
        report(run(arguments))
