"""Public holidays by country and subdivision for business calendars, from ``holidays``.

A calendar's ``holidays`` lists explicit dates (``2026-12-24``) beside regions: a country
(``US``) or a country and subdivision (``DE-BY``, Bavaria), ISO 3166 codes as the ``holidays``
package knows them. A region stands for its public holidays in :data:`YEARS`; the arithmetic
itself stays with :class:`leadrelay.calendar.BusinessCalendar`, which only sees dates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from functools import cache
from typing import Final

import holidays

YEARS: Final = range(2020, 2041)
"""The years a region's holidays are listed for (SLA deadlines never reach further)."""
_REGION: Final = re.compile(r"^([A-Z]{2})(?:-([A-Z0-9]{1,4}))?$")

HolidayEntry = date | str
"""An explicit date, or a region code such as ``US`` or ``DE-BY``."""


def parse_holiday(value: object) -> HolidayEntry:
    """A date (``date`` or ``YYYY-MM-DD``) or a region the ``holidays`` package supports.

    Raises ``ValueError`` naming what is wrong (unknown country, unknown subdivision).
    """
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a date (YYYY-MM-DD) or a region such as US or DE-BY")
    text = value.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    return _region(text.upper())


def holiday_dates(entries: Iterable[HolidayEntry]) -> frozenset[date]:
    """Every date the entries stand for: explicit dates, and each region's public holidays."""
    days: set[date] = set()
    for entry in entries:
        days |= _region_dates(entry) if isinstance(entry, str) else {entry}
    return frozenset(days)


def _region(code: str) -> str:
    found = _REGION.match(code)
    supported = holidays.list_supported_countries()
    if found is None or found.group(1) not in supported:
        raise ValueError(f"{code!r} is neither a date (YYYY-MM-DD) nor a supported country code")
    country, subdivision = found.groups()
    if subdivision is not None and subdivision not in supported[country]:
        known = ", ".join(supported[country][:12]) or "none"
        raise ValueError(f"{country} has no subdivision {subdivision!r} (e.g. {known})")
    return code


@cache
def _region_dates(code: str) -> frozenset[date]:
    country, _, subdivision = code.partition("-")
    listed = holidays.country_holidays(country, subdiv=subdivision or None, years=YEARS)
    return frozenset(listed)
