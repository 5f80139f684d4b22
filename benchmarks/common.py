"""Pieces every benchmark script shares: a broker to run on, background tasks, polling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator


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
