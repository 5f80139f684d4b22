"""Background loops: wait out an outage, stop on a bug, end at once on shutdown."""

from __future__ import annotations

import asyncio

import pytest

from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.periodic import repeat


class FlakyWork:
    """Fails with ``error`` the first ``failures`` times, then sets ``stop`` once it worked."""

    def __init__(self, error: Exception, failures: int, stop: asyncio.Event) -> None:
        self.error, self.failures, self.stop = error, failures, stop
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        self.stop.set()


async def test_an_unreachable_database_or_broker_is_waited_out() -> None:
    stop = asyncio.Event()
    work = FlakyWork(ConnectionRefusedError("database down"), failures=3, stop=stop)
    await asyncio.wait_for(
        repeat(stop, work, every=3600, name="test", backoff=BackoffPolicy(0.01, 0.01)),
        timeout=30,
    )
    assert work.calls == 4  # three outages, then the work done; no hour-long wait in between


async def test_a_bug_stops_the_loop_instead_of_being_retried_forever() -> None:
    stop = asyncio.Event()
    work = FlakyWork(ValueError("a bug"), failures=1, stop=stop)
    with pytest.raises(ValueError, match="a bug"):
        await repeat(stop, work, every=0.01, name="test")
    assert work.calls == 1


async def test_shutdown_ends_the_pause_at_once() -> None:
    stop, worked = asyncio.Event(), asyncio.Event()
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1
        worked.set()

    running = asyncio.create_task(repeat(stop, work, every=3600, name="test"))
    await asyncio.wait_for(worked.wait(), timeout=30)
    stop.set()
    await asyncio.wait_for(running, timeout=30)  # not an hour
    assert calls == 1
