"""Pieces every benchmark script shares: a broker to run on, background tasks, polling, the
processes a benchmark starts, the bare baselines (an endpoint, a consume -> produce hop) and
the one percentile every table prints."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import math
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI, Request, Response

from services.reporting.domain.stats import quantile

BATCH_JSON = "application/cloudevents-batch+json"


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile, the one LeadRelay's reports compute
    (:func:`services.reporting.domain.stats.quantile`): the smallest value with at least
    ``fraction`` of the values at or below it, so the p50 of 1, 2, 3, 4 is 2 and a p99 is a
    latency some request really had; NaN for no values."""
    found = quantile(values, fraction)
    return math.nan if found is None else found


async def poll_until(done: Callable[[], Awaitable[bool]]) -> None:
    """Check every 10 ms: the end is an observed state (counters, rows, backlog), not an event."""
    while True:
        if await done():
            return
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(task: Callable[[asyncio.Event], Awaitable[None]]) -> AsyncIterator[None]:
    """Run ``task(stop)`` in the background for the block, then stop it and surface its error."""
    stop = asyncio.Event()
    background = asyncio.ensure_future(task(stop))
    try:
        yield
    finally:
        stop.set()
        await background


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """The given broker, or a throwaway single-node Kafka from the test harness."""
    if bootstrap:
        yield bootstrap
        return
    from tests.harness.kafka_broker import KafkaBroker

    with KafkaBroker() as started:
        yield started.bootstrap


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    """The given PostgreSQL URL, or a throwaway cluster from the test harness (its database)."""
    if url:
        yield url
        return
    from tests.harness.postgres import PostgresServer

    with PostgresServer() as started:
        yield started.url


class Processes:
    """The OS processes a benchmark starts, each stopped when the block ends, however it ends.

    Each child gets a session of its own, so a Ctrl-C at the terminal reaches only the benchmark,
    which then stops its children in order: SIGTERM (they drain and exit cleanly), SIGKILL of the
    child's own process group after ``grace`` seconds. ``atexit`` repeats the stop should the
    interpreter leave without unwinding the block.
    """

    def __init__(self, grace: float = 20.0) -> None:
        self.grace = grace
        self._started: list[tuple[str, subprocess.Popen[bytes]]] = []
        atexit.register(self.stop_all)

    def start(
        self, name: str, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` with its output in ``log``; it is stopped with the others."""
        with log.open("ab") as sink:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started.append((name, process))
        return process

    def run(
        self, name: str, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], log: Path
    ) -> int:
        """Run ``argv`` to its end (a one-off step, e.g. a migration); its exit status."""
        process = self.start(name, argv, cwd=cwd, env=env, log=log)
        status = process.wait()
        self._started = [(n, p) for n, p in self._started if p is not process]
        return status

    def exited(self) -> list[str]:
        """The names of started processes that are no longer running (a crash, most likely)."""
        return [name for name, process in self._started if process.poll() is not None]

    def stop_all(self) -> None:
        """SIGTERM every running child (newest first), then SIGKILL those still alive."""
        started, self._started = self._started, []
        for _name, process in reversed(started):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + self.grace
        for _name, process in reversed(started):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_tree(process.pid)
                process.wait()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop_all()


def bare_endpoint(producer: AIOKafkaProducer, topic: str) -> FastAPI:
    """The least an HTTP intake can do: ``POST /v1/events`` -> the body on ``topic`` (acks as
    ``producer`` asks), ``202`` once acknowledged. No authentication or validation; a batch
    (``application/cloudevents-batch+json``) is split into one record per event, as ingest
    produces them, which is the only parsing it does.

    The records are keyed by the request's ``webhook-id`` header, so the benchmark can match
    them.
    """
    app = FastAPI()

    @app.post("/v1/events", status_code=202)
    async def accept(request: Request) -> Response:
        key = request.headers.get("webhook-id", "").encode()
        body = await request.body()
        if request.headers.get("content-type") != BATCH_JSON:
            await producer.send_and_wait(topic, body, key=key)
            return Response(status_code=202)
        sent = [await producer.send(topic, orjson.dumps(e), key=key) for e in orjson.loads(body)]
        await asyncio.gather(*sent)
        return Response(status_code=202)

    @app.get("/readyz")
    async def ready() -> Response:
        return Response(status_code=200)

    return app


async def bare_hop(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, sink: str, stop: asyncio.Event
) -> None:
    """Consume -> produce -> commit, per partition batch, doing no work: what a service's hop
    costs when all it does is move the bytes on (the consumer is subscribed already)."""
    while not stop.is_set():
        for partition, records in (await consumer.getmany(timeout_ms=100)).items():
            sent = [await producer.send(sink, r.value, key=r.key) for r in records]
            await asyncio.gather(*sent)
            await consumer.commit({partition: records[-1].offset + 1})


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid``'s process group and every descendant, including those that started a
    session of their own (``leadrelay up``'s embedded broker does), which the group misses."""
    family = _descendants(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for member in family:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, read from ``/proc`` (Linux); none elsewhere."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, frontier = [], [pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found.extend(children)
        frontier.extend(children)
    return found
