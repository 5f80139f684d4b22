"""The runtime's one back-off policy: how long to wait before trying again after a failure.

The consume loop (broker unreachable, database down, a handler failing), the dead-letter path,
the outbox relay and every periodic job wait the same way: the first wait is ``initial_seconds``,
each further consecutive failure doubles it up to ``max_seconds``, and a success starts over.
Every wait ends at once when the service is told to stop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from leadrelay.runtime.waiting import pause


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential back-off, capped: ``initial_seconds``, twice that, ... up to ``max_seconds``."""

    initial_seconds: float = 0.2
    max_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.initial_seconds < 0 or self.max_seconds < self.initial_seconds:
            raise ValueError("need 0 <= initial_seconds <= max_seconds")

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` consecutive failures (1 for the first)."""
        if failures < 1:
            return 0.0
        # min() before the power: 2**failures must not overflow after a week-long outage.
        growth: float = 2.0 ** min(failures - 1, 64)
        return min(self.initial_seconds * growth, self.max_seconds)

    def start(self) -> Backoff:
        """A fresh run of waits under this policy (one per loop or per message)."""
        return Backoff(self)


class Backoff:
    """The running state of one :class:`BackoffPolicy`: how many failures in a row so far."""

    def __init__(self, policy: BackoffPolicy) -> None:
        self.policy = policy
        self.failures = 0

    @property
    def next_delay(self) -> float:
        """What the next :meth:`wait` will sleep (for logs that announce it)."""
        return self.policy.delay(self.failures + 1)

    async def wait(self, stop: asyncio.Event) -> None:
        """Count one more failure and sleep its delay, waking at once when ``stop`` is set."""
        self.failures += 1
        await pause(stop, self.policy.delay(self.failures))

    def reset(self) -> None:
        """A success: the next failure waits ``initial_seconds`` again."""
        self.failures = 0
