"""The one duration grammar of SLA policies: ``<whole number><unit>``.

Units: ``m``, ``h``, ``d`` are wall-clock minutes, hours and days (a day is 24 hours, nights and
weekends included); ``bm``, ``bh`` are business minutes and hours counted only inside the
calendar's working intervals; ``bd`` is business days: the same business moment on the next
business day (Tuesday 10:00 + 1bd = Wednesday 10:00, Friday 15:00 + 1bd = Monday 15:00).

Warnings are written ``"75%"`` (of the clock's span) or ``"<duration> before"`` / ``"<duration>"``
(that long before the deadline, in the clock's own kind of time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from services.sla_monitor.domain.calendar import (
    BusinessCalendar,
    add_business_days,
    add_business_time,
    business_time_between,
    to_utc,
)


class TimeBasis(StrEnum):
    WALL = "wall"
    BUSINESS = "business"


_UNITS: Final[dict[str, tuple[TimeBasis, timedelta | None]]] = {
    "m": (TimeBasis.WALL, timedelta(minutes=1)),
    "h": (TimeBasis.WALL, timedelta(hours=1)),
    "d": (TimeBasis.WALL, timedelta(days=1)),
    "bm": (TimeBasis.BUSINESS, timedelta(minutes=1)),
    "bh": (TimeBasis.BUSINESS, timedelta(hours=1)),
    "bd": (TimeBasis.BUSINESS, None),
}
_DURATION = re.compile(r"^\s*(\d+)\s*(bm|bh|bd|m|h|d)\s*$")
_PERCENT = re.compile(r"^\s*(\d+)\s*%\s*$")
_BEFORE = re.compile(r"\s+before\s*$")
_ZERO = timedelta(0)
_MAX_AMOUNT = 9999
"""Far beyond any real SLA; it stops a typo such as ``10000000bd`` from stalling the monitor."""
_HELP = (
    "expected a whole number and a unit: m, h, d (wall clock) or bm, bh, bd (business time),"
    " e.g. '1bh', '4h', '2bd'"
)


@dataclass(frozen=True)
class Duration:
    """A parsed duration such as ``1bh``; ``str()`` gives the text back."""

    amount: int
    unit: str

    @property
    def basis(self) -> TimeBasis:
        return _UNITS[self.unit][0]

    @property
    def fixed(self) -> timedelta | None:
        """The length for every unit but ``bd``, whose length depends on the day it starts."""
        step = _UNITS[self.unit][1]
        return None if step is None else step * self.amount

    def after(self, calendar: BusinessCalendar, start: datetime) -> datetime:
        """The instant this long after ``start``, in wall or business time of ``calendar``."""
        fixed = self.fixed
        if fixed is None:
            return add_business_days(calendar, start, self.amount)
        if self.basis is TimeBasis.BUSINESS:
            return add_business_time(calendar, start, fixed)
        return to_utc(start) + fixed  # real elapsed time, whatever the DST offset

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


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


def parse_duration(value: object) -> Duration:
    """Parse ``"1bh"``, ``"4h"``, ``"2bd"``; refuse anything else with the grammar in the error."""
    if isinstance(value, Duration):
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"invalid duration {value!r}: {_HELP}")
    amount = int(match[1])
    if not 1 <= amount <= _MAX_AMOUNT:
        raise ValueError(f"invalid duration {value!r}: must be between 1 and {_MAX_AMOUNT}")
    return Duration(amount, match[2])


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
