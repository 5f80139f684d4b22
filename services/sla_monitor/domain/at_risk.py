"""Acting before a breach: which running clocks to forecast, with what, and what a risk does.

The forecaster (``jobs/forecasting.py``) asks :func:`assess` about each running sales clock
(first touch or acceptance, not yet breached) that has not been found at risk before. The rep's
outlook is built here from what the monitor holds: their calendar and absences (the roster
snapshot), the other clocks open against them (their load) and how long their recent clocks of
the same kind took to complete (their own pace, in business time). A clock found at risk is
announced once (``sla_at_risk``); under the policy's ``at_risk: reassign`` a first-touch clock's
lead is also handed on at once, the way ``out_of_office: hand_on`` hands it on: a request for
another rep, every rep who had it in this episode excluded, and the assignment's clocks stopped.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadrelay.calendar import BusinessCalendar, business_time_between, to_utc
from services.sla_monitor.domain.actions import ClockKind, RequestReassignment
from services.sla_monitor.domain.clocks import AT_RISK, ClockState, SlaClock, end_assignment
from services.sla_monitor.domain.config import SlaPolicy
from services.sla_monitor.domain.forecast import Forecast, RepOutlook, forecast
from services.sla_monitor.domain.out_of_office import Absence, reassignment_request

FORECAST_STATES = frozenset({ClockState.RUNNING, ClockState.WARNED})
"""Clocks worth forecasting: still running and not breached (a breach is no forecast)."""
FORECAST_KINDS = frozenset({ClockKind.FIRST_TOUCH, ClockKind.ACCEPTANCE})
PACE_WINDOW = timedelta(days=30)
"""How far back a rep's completed clocks count towards their pace."""
PACE_SAMPLE = 20
"""At most this many of their latest completed clocks of a kind count (the median of them)."""


def is_forecast(clock: SlaClock) -> bool:
    """Whether ``clock`` is one the forecaster looks at (see ``FORECAST_STATES``)."""
    return clock.kind in FORECAST_KINDS and clock.state in FORECAST_STATES


def open_load(clocks: Iterable[SlaClock], clock: SlaClock) -> int:
    """How many other assignments of the rep have an open clock of ``clock``'s kind."""
    return len(
        {
            c.assignment_id
            for c in clocks
            if c.rep_id == clock.rep_id
            and c.kind is clock.kind
            and c.is_open
            and c.assignment_id != clock.assignment_id
        }
    )


def recent_pace(
    completed: Iterable[SlaClock], kind: ClockKind, calendar: BusinessCalendar, now: datetime
) -> timedelta | None:
    """The rep's typical time to complete a clock of ``kind``: the median business time of their
    latest ``PACE_SAMPLE`` completed within ``PACE_WINDOW`` (None: no such clock)."""
    since = to_utc(now) - PACE_WINDOW
    done = sorted(
        (completed_at(c), c) for c in completed if c.kind is kind and _completed_since(c, since)
    )
    took = [business_time_between(calendar, c.started_at, at) for at, c in done[-PACE_SAMPLE:]]
    if not took:
        return None
    return timedelta(seconds=statistics.median(max(t, timedelta(0)).total_seconds() for t in took))


def completed_at(clock: SlaClock) -> datetime:
    """When a completed clock was completed (its last recorded step)."""
    return to_utc(clock.steps_taken[-1][1]) if clock.steps_taken else to_utc(clock.due_at)


def _completed_since(clock: SlaClock, since: datetime) -> bool:
    return clock.state is ClockState.COMPLETED and completed_at(clock) >= since


def outlook(
    clock: SlaClock,
    calendar: BusinessCalendar | None,
    absences: Sequence[Absence],
    rep_clocks: Sequence[SlaClock],
    now: datetime,
) -> RepOutlook:
    """What the forecast knows of ``clock``'s rep: ``calendar`` and ``absences`` from the roster,
    load and pace from ``rep_clocks`` (their clocks the monitor holds, open and recently done)."""
    pace = recent_pace(rep_clocks, clock.kind, calendar, now) if calendar is not None else None
    return RepOutlook(calendar, tuple(absences), open_load(rep_clocks, clock), pace)


@dataclass(frozen=True)
class AtRisk:
    """A clock forecast not to be met, and whether its lead is handed on now."""

    clock: SlaClock
    forecast: Forecast
    reassign: bool
    at: datetime


def assess(clock: SlaClock, policy: SlaPolicy, rep: RepOutlook, now: datetime) -> AtRisk | None:
    """``clock`` at risk (and whether to hand its lead on, as ``policy`` says), or None when the
    forecast says it will be met or the clock is not one to forecast."""
    if not is_forecast(clock) or to_utc(now) >= to_utc(clock.due_at):
        return None  # not a clock to forecast, or due already: the firing loop's to breach
    result = forecast(clock.due_at, now, rep)
    if not result.at_risk:
        return None
    reassign = policy.at_risk == "reassign" and clock.kind is ClockKind.FIRST_TOUCH
    return AtRisk(clock, result, reassign, to_utc(now))


def hand_on_at_risk(
    clocks: Sequence[SlaClock], risk: AtRisk
) -> tuple[list[SlaClock], RequestReassignment]:
    """The assignment's clocks stopped (label ``sla_at_risk``) and the request for another rep."""
    request = reassignment_request(risk.clock, risk.at, reason="sla_at_risk")
    return end_assignment(clocks, risk.clock.assignment_id, risk.at, label=AT_RISK), request
