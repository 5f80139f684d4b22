"""Which business calendar an assignment's SLA deadlines are counted in: ONE choice, two users.

Hand-off publishes the deadlines with the assignment and the SLA monitor runs the clocks; both
call :func:`sla_calendar`, so the deadline a rep reads in the assignment is the one the monitor
enforces. The rule: the rep's own calendar (time zone, weekly working hours, holidays from the
roster), plus the holidays of the calendar the policy names: sales ops lists a team's or a
region's public holidays once, on the team's calendar, not on every rep. The policy's calendar
alone when there is no rep (a lead left in the fallback queue) or when the rep's hours cannot
serve as a business calendar (a week without any working time would never come due, and shifts
running into the next day's first shift are ambiguous).

Out-of-office periods are not part of the calendar: routing never hands a lead to an absent rep.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import NamedTuple

from services.handoff.domain.config import Rep
from services.sla_monitor.domain import BusinessCalendar, SlaConfig, SlaPolicy


class CalendarParts(NamedTuple):
    """A rep's calendar in the shape ``BusinessCalendar.from_parts`` takes."""

    time_zone: str
    weekly_hours: Mapping[str, tuple[str, ...]]
    holidays: tuple[date, ...]


def rep_calendar_parts(rep: Rep) -> CalendarParts:
    """The rep's roster calendar as text parts (shifts written back as ``"HH:MM-HH:MM"``)."""
    hours: dict[str, tuple[str, ...]] = {
        day: tuple(str(shift) for shift in shifts) for day, shifts in rep.working_hours.items()
    }
    return CalendarParts(rep.time_zone, hours, rep.holidays)


def sla_calendar(rep: Rep | None, policy: SlaPolicy, sla: SlaConfig) -> BusinessCalendar:
    """The calendar ``policy``'s deadlines count in for an assignment to ``rep`` (see module)."""
    policy_calendar = sla.calendar(policy.calendar)
    own = own_calendar(rep) if rep is not None else None
    if own is None:
        return policy_calendar
    return replace(own, holidays=own.holidays | policy_calendar.holidays)


def own_calendar(rep: Rep) -> BusinessCalendar | None:
    """The rep's own business calendar, or None when their hours cannot be one (see module)."""
    try:
        return BusinessCalendar.from_parts(*rep_calendar_parts(rep))
    except ValueError:
        return None
