"""Will a running clock be met? A forecast from the rep's hours, absence, load and habits.

The rep can act from the first moment they are both in working hours (their own calendar) and
not out of office; from there they need their own recent time-to-touch (business time) plus a
share for each lead already open on their desk. The clock is at risk when that moment falls
after its due time. Every reason the forecast gives is one that moved that moment: absence,
being off shift, their own pace, their load. Pure: time and facts are passed in.

How good the forecasts were is measured by reporting, from the public events: precision is the
share of clocks announced at risk that did breach, recall the share of breaches announced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from leadrelay.calendar import BusinessCalendar, add_business_time, next_working_moment, to_utc

Reason = Literal["off_shift_before_due", "out_of_office", "slow_to_touch", "loaded"]
PER_OPEN_LEAD = timedelta(minutes=10)
"""Business time one lead already open on the rep's desk adds before they reach this one."""


@dataclass(frozen=True)
class RepOutlook:
    """What the monitor knows about the rep a clock runs against, at forecast time."""

    calendar: BusinessCalendar | None
    """The rep's own calendar (None: hours unknown, the rep is taken to be always in)."""
    out_of_office: Sequence[tuple[datetime, datetime]] = ()
    """Absences as [start, end) instants."""
    open_load: int = 0
    """Other clocks open against the rep."""
    recent_touch: timedelta | None = None
    """Their recent typical time-to-touch in business time (None: no history yet)."""


@dataclass(frozen=True)
class Forecast:
    at_risk: bool
    expected_at: datetime | None
    """When the rep is expected to act (None: not within the calendar's search horizon)."""
    reasons: tuple[Reason, ...]


def forecast(
    due_at: datetime, now: datetime, rep: RepOutlook, per_open_lead: timedelta = PER_OPEN_LEAD
) -> Forecast:
    """The forecast for a clock due at ``due_at``, made at ``now``."""
    due = to_utc(due_at)
    start, moved_by = _available_from(to_utc(now), rep)
    if start is None:
        return Forecast(True, None, moved_by or ("off_shift_before_due",))
    work: dict[Reason, timedelta] = {
        "slow_to_touch": rep.recent_touch or timedelta(0),
        "loaded": rep.open_load * per_open_lead,
    }
    expected = _after_work(rep.calendar, start, sum(work.values(), timedelta(0)))
    if expected <= due:
        return Forecast(False, expected, ())
    if start > due:  # absent or off shift until after the due time
        return Forecast(True, expected, moved_by)
    if start + sum(work.values(), timedelta(0)) <= due:  # the work fits, the shift does not
        return Forecast(True, expected, ("off_shift_before_due",))
    return Forecast(True, expected, _pace_reasons(rep.calendar, start, due, work))


def _available_from(now: datetime, rep: RepOutlook) -> tuple[datetime | None, tuple[Reason, ...]]:
    """The first moment at or after ``now`` the rep is in hours and present, and what moved it."""
    moment: datetime | None = now
    reasons: list[Reason] = []
    for _ in range(len(rep.out_of_office) + 2):  # each pass clears at least one obstacle
        if moment is None:
            break
        absent = [end for start, end in rep.out_of_office if start <= moment < end]
        if absent:
            moment, reasons = to_utc(max(absent)), [*reasons, "out_of_office"]
            continue
        in_hours = moment if rep.calendar is None else next_working_moment(rep.calendar, moment)
        if in_hours == moment:
            break
        moment, reasons = in_hours, [*reasons, "off_shift_before_due"]
    return moment, tuple(dict.fromkeys(reasons))


def _after_work(calendar: BusinessCalendar | None, start: datetime, work: timedelta) -> datetime:
    if calendar is None:
        return start + work
    return add_business_time(calendar, start, work)


def _pace_reasons(
    calendar: BusinessCalendar | None,
    start: datetime,
    due: datetime,
    work: dict[Reason, timedelta],
) -> tuple[Reason, ...]:
    """The parts of the work that alone miss the due time; all parts if only together."""
    alone = tuple(r for r, w in work.items() if w and _after_work(calendar, start, w) > due)
    return alone or tuple(r for r, w in work.items() if w)
