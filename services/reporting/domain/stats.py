"""Counting helpers shared by every report: windows, rates and quantiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Window:
    """The half-open interval ``[start, end)`` a report covers."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a report window needs timezone-aware instants")
        if self.end <= self.start:
            raise ValueError("`to` must be after `from`")

    def holds(self, at: datetime) -> bool:
        return self.start <= at < self.end


def quantile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-quantile: the smallest value with at least ``q`` of the values at
    or below it (the median of 1, 2, 3, 4 is 2); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(q * len(ordered)), 1)
    return ordered[rank - 1]


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` rounded to 4 places; None when there is nothing to divide."""
    return round(part / whole, 4) if whole else None


def share_within(values: Sequence[float | None], limit: float) -> float | None:
    """The share of ``values`` that are known and at most ``limit`` (None counts as over)."""
    return rate(sum(1 for v in values if v is not None and v <= limit), len(values))
