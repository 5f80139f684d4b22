"""Background work on a timer, with the runtime's one policy for when it fails.

The SLA firing loop and scoring's retention sweep both run this way: do the work, pause, repeat
until shutdown. An infrastructure error (database or broker unreachable) is waited out with an
exponential back-off, because the work is still needed once it is back; any other error is a bug
and stops the service instead of being retried forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from leadrelay.runtime.failure import is_infrastructure_error
from leadrelay.runtime.waiting import pause

log = logging.getLogger(__name__)

FIRST_BACKOFF_SECONDS = 0.2


async def repeat(
    stop: asyncio.Event,
    work: Callable[[], Awaitable[object]],
    *,
    every: float,
    name: str,
    backoff_max_seconds: float = 10.0,
) -> None:
    """Await ``work()`` now and then every ``every`` seconds until ``stop`` is set."""
    first_backoff = min(every, FIRST_BACKOFF_SECONDS)
    delay = first_backoff
    while not stop.is_set():
        try:
            await work()
        except Exception as error:  # named policy: infrastructure backs off, the rest stops
            if not is_infrastructure_error(error):
                raise
            log.warning("%s backing off %.1fs: %r", name, delay, error)
            await pause(stop, delay)
            delay = min(delay * 2, backoff_max_seconds)
            continue
        delay = first_backoff
        await pause(stop, every)
