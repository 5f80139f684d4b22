"""Background work on a timer, with the runtime's one policy for when it fails.

The SLA firing loop, the outbox relay and the retention sweeps all run this way: do the work,
pause, repeat until shutdown. An outage (database or broker unreachable) or a transient
PostgreSQL conflict is waited out under the runtime's :class:`BackoffPolicy`, because the work is
still needed once it is back; any other error is a bug and stops the service instead of being
retried forever (see :mod:`leadrelay.runtime.failure`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.runtime.failure import is_retried_without_limit
from leadrelay.runtime.waiting import pause

log = logging.getLogger(__name__)


async def repeat(
    stop: asyncio.Event,
    work: Callable[[], Awaitable[object]],
    *,
    every: float,
    name: str,
    backoff: BackoffPolicy | None = None,
    wake: asyncio.Event | None = None,
) -> None:
    """Await ``work()`` now and then every ``every`` seconds until ``stop`` is set.

    Setting ``wake`` starts the next ``work()`` at once instead of after the pause; it is
    cleared just before each ``work()``, so a wake-up during the work runs it once more.
    """
    waits = (backoff or BackoffPolicy()).start()
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        try:
            await work()
        except Exception as error:  # named policy: outages back off, the rest stops
            if not is_retried_without_limit(error):
                raise
            log.warning("%s backing off %.1fs: %r", name, waits.next_delay, error)
            await waits.wait(stop)
            continue
        waits.reset()
        await pause(stop, every, wake=wake)
