"""The one duration grammar: ``<whole number><unit>``, in elapsed or in business time.

Elapsed units: ``s``, ``m``, ``h``, ``d`` (24 hours, nights and weekends included) and ``w``
(7 days). Business units count only inside a calendar's working intervals: ``bm`` and ``bh`` are
business minutes and hours, ``bd`` is business days: the same business moment on the next business
day (Tuesday 10:00 + 1bd = Wednesday 10:00, Friday 15:00 + 1bd = Monday 15:00).

The scorecard reads elapsed time only (:func:`parse_elapsed`: an engagement half-life is not
business time); SLA policies read both (:func:`parse_duration`). A bare number is refused
everywhere: ``half_life: 14`` could mean days or hours, and a silent guess would change every score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from leadrelay.calendar import (
    BusinessCalendar,
    add_business_days,
    add_business_time,
    to_utc,
)


class TimeBasis(StrEnum):
    WALL = "wall"
    BUSINESS = "business"


_UNITS: Final[dict[str, tuple[TimeBasis, timedelta | None]]] = {
    "s": (TimeBasis.WALL, timedelta(seconds=1)),
    "m": (TimeBasis.WALL, timedelta(minutes=1)),
    "h": (TimeBasis.WALL, timedelta(hours=1)),
    "d": (TimeBasis.WALL, timedelta(days=1)),
    "w": (TimeBasis.WALL, timedelta(weeks=1)),
    "bm": (TimeBasis.BUSINESS, timedelta(minutes=1)),
    "bh": (TimeBasis.BUSINESS, timedelta(hours=1)),
    "bd": (TimeBasis.BUSINESS, None),
}
_DURATION: Final = re.compile(r"^\s*(\d+)\s*(bm|bh|bd|s|m|h|d|w)\s*$")
DURATION_PATTERN: Final = r"^\d+(bm|bh|bd|s|m|h|d|w)$"
"""The grammar as a JSON Schema pattern, for the definitions file's published schema."""
_MAX_BUSINESS_AMOUNT: Final = 9999
"""Far beyond any real SLA; it stops a typo such as ``10000000bd`` from stalling the monitor,
which walks the calendar day by day for business units (elapsed units cost nothing)."""
_HELP: Final = (
    "expected a whole number and a unit: s, m, h, d, w (elapsed time) or bm, bh, bd"
    " (business time), e.g. '90m', '36h', '2w', '1bh', '2bd'"
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
        """The instant this long after ``start``, in elapsed or business time of ``calendar``."""
        fixed = self.fixed
        if fixed is None:
            return add_business_days(calendar, start, self.amount)
        if self.basis is TimeBasis.BUSINESS:
            return add_business_time(calendar, start, fixed)
        return to_utc(start) + fixed  # real elapsed time, whatever the DST offset

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def parse_duration(value: object) -> Duration:
    """Parse ``"1bh"``, ``"4h"``, ``"2bd"``, ``"2w"``; refuse anything else with the grammar."""
    if isinstance(value, Duration):
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"invalid duration {value!r}: {_HELP}")
    amount, unit = int(match[1]), match[2]
    if amount < 1:
        raise ValueError(f"invalid duration {value!r}: must be at least 1")
    if _UNITS[unit][0] is TimeBasis.BUSINESS and amount > _MAX_BUSINESS_AMOUNT:
        raise ValueError(
            f"invalid duration {value!r}: business time must be between 1 and"
            f" {_MAX_BUSINESS_AMOUNT}"
        )
    return Duration(amount, unit)


def parse_elapsed(value: object) -> timedelta:
    """Parse an elapsed duration (``"90m"``, ``"14d"``, ``"2w"``) into a positive timedelta.

    Business units are refused: without a calendar they have no length.
    """
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise ValueError(f"invalid duration {value!r}: must be positive")
        return value
    duration = parse_duration(value)
    if duration.basis is TimeBasis.BUSINESS or duration.fixed is None:
        raise ValueError(
            f"invalid duration {value!r}: business time has no fixed length here;"
            " use s, m, h, d or w, e.g. '90m', '14d'"
        )
    return duration.fixed


def format_elapsed(value: timedelta) -> str:
    """Text ``parse_elapsed`` reads back to ``value``, in days at most (as people write them)."""
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        size = int(_fixed(unit).total_seconds())
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _fixed(unit: str) -> timedelta:
    step = _UNITS[unit][1]
    assert step is not None
    return step


ElapsedText = Annotated[
    timedelta,
    PlainValidator(parse_elapsed),
    PlainSerializer(format_elapsed, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\s*\d+\s*[smhdw]\s*$", "examples": ["14d"]}),
]
"""A definitions-file field holding elapsed time, written ``"90m"``, ``"36h"``, ``"14d"``."""
