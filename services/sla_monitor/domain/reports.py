"""What firing did, in numbers: the report of a round and the lag percentiles benchmarks print.

Pure values, so the firing job, the scale test and the benchmark share them without I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FiringReport:
    """What one round (or a whole drain) did; ``lags`` are seconds from due to committed."""

    selected: int = 0
    fired_clocks: int = 0
    actions: int = 0
    deferred_assignments: int = 0
    lags: tuple[float, ...] = field(default=(), repr=False)
    quarantined: int = 0
    """Clocks set aside because firing them raised (the round was rolled back for them)."""

    def __add__(self, other: FiringReport) -> FiringReport:
        return FiringReport(
            self.selected + other.selected,
            self.fired_clocks + other.fired_clocks,
            self.actions + other.actions,
            self.deferred_assignments + other.deferred_assignments,
            self.lags + other.lags,
            self.quarantined + other.quarantined,
        )


@dataclass(frozen=True)
class LagSummary:
    """Percentiles of firing lag in seconds (nearest-rank)."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of(cls, lags: Sequence[float]) -> LagSummary:
        ordered = sorted(lags)
        if not ordered:
            return cls(0, 0.0, 0.0, 0.0, 0.0)

        def rank(q: float) -> float:
            return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]

        return cls(len(ordered), rank(0.5), rank(0.9), rank(0.99), ordered[-1])

    def __str__(self) -> str:
        return (
            f"{self.count} events, lag p50 {self.p50:.3f}s p90 {self.p90:.3f}s "
            f"p99 {self.p99:.3f}s max {self.max:.3f}s"
        )
