"""When an SLA clock warns: ``"75%"`` of the clock's span, or ``"<duration> before"`` the deadline.

``"<duration>"`` alone means the same as ``"<duration> before"``; the duration is counted in the
clock's own kind of time (elapsed or business), in the grammar of :mod:`leadrelay.durations`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadrelay.calendar import BusinessCalendar, add_business_time, business_time_between
from leadrelay.durations import Duration, TimeBasis, parse_duration

_PERCENT = re.compile(r"^\s*(\d+)\s*%\s*$")
_BEFORE = re.compile(r"\s+before\s*$")
_ZERO = timedelta(0)


@dataclass(frozen=True)
class WarnRule:
    """When to warn: at ``percent`` of the clock's span, or ``before`` the deadline."""

    percent: int | None = None
    before: Duration | None = None

    def warn_at(
        self, calendar: BusinessCalendar, start: datetime, due: datetime, basis: TimeBasis
    ) -> datetime:
        """The warning instant, never before ``start`` (a too-early warning fires at once)."""
        if basis is TimeBasis.WALL:
            return max(start, due - self._remaining(due - start))
        span = business_time_between(calendar, start, due)
        elapsed = max(span - self._remaining(span), _ZERO)
        return add_business_time(calendar, start, elapsed)

    def _remaining(self, span: timedelta) -> timedelta:
        """How much of ``span`` is left when the warning fires."""
        if self.percent is not None:
            return span - span * self.percent // 100
        assert self.before is not None
        assert self.before.fixed is not None  # parse_warn_rule refuses bd
        return self.before.fixed

    def __str__(self) -> str:
        return f"{self.percent}%" if self.percent is not None else f"{self.before} before"


def parse_warn_rule(value: object) -> WarnRule:
    """Parse ``"75%"``, ``"15bm before"`` or ``"15bm"`` (before the deadline)."""
    if isinstance(value, WarnRule):
        return value
    if not isinstance(value, str):
        raise ValueError(f"invalid warn_at {value!r}: expected e.g. '75%' or '15bm before'")
    percent = _PERCENT.match(value)
    if percent is not None:
        share = int(percent[1])
        if not 0 < share < 100:
            raise ValueError(f"invalid warn_at {value!r}: a percentage must be between 1 and 99")
        return WarnRule(percent=share)
    before = parse_duration(_BEFORE.sub("", value))
    if before.fixed is None:
        raise ValueError(
            f"invalid warn_at {value!r}: business days have no fixed length;"
            " use a percentage or business hours (e.g. '8bh before')"
        )
    return WarnRule(before=before)
