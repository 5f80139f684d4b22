"""The one duration grammar of the scorecard: a whole number and a unit, e.g. ``"14d"``.

Scorecard durations (the engagement half-life, rule windows) are plain elapsed time, so the
grammar is deliberately tiny: ``s``, ``m``, ``h``, ``d`` (24 hours) and ``w`` (7 days). Marketing
writes ``"14d"``; nobody has to know ISO 8601.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

_UNITS: Final[dict[str, timedelta]] = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_DURATION: Final = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_HELP: Final = "expected a whole number and a unit s, m, h, d or w, e.g. '90m', '36h', '14d', '2w'"


def parse_duration(value: object) -> timedelta:
    """Parse ``"90m"``, ``"36h"``, ``"14d"``, ``"2w"`` into a positive timedelta.

    A bare number is refused on purpose: ``half_life: 14`` could mean days or hours, and a
    silent guess would change every score.
    """
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise ValueError(f"invalid duration {value!r}: must be positive")
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"invalid duration {value!r}: {_HELP}")
    amount = int(match[1])
    if amount < 1:
        raise ValueError(f"invalid duration {value!r}: must be at least 1")
    return _UNITS[match[2]] * amount


def format_duration(value: timedelta) -> str:
    """Text ``parse_duration`` reads back to ``value``, in days at most (as people write them)."""
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        size = int(_UNITS[unit].total_seconds())
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
