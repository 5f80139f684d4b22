"""SLA compliance: every clock an assignment started, and what became of it; and how often the
monitor's forecasts (``sla_at_risk``) were right about it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.reporting.domain.facts import Assignment, History, Recycle, Touch
from services.reporting.domain.report import ALL, Report, Row, dimension, grouped
from services.reporting.domain.stats import Window, rate

SLA_BY = ("policy", "rep", "team")
ACCEPTING = frozenset({"accepted", "qualified", "opportunity_created", "won"})
"""Outcomes that stop an acceptance clock (a rep who qualified a lead has accepted it)."""
MARKETING = "marketing"
"""The policy of marketing's clock on a recycled lead (the SLA monitor's ``sla.marketing``)."""
MARKETING_CLOCK = "marketing_acknowledgement"


@dataclass(frozen=True)
class Clock:
    """One SLA clock of one assignment and its outcome: met, breached or still open."""

    assignment: Assignment
    kind: str
    due: datetime
    outcome: str
    at_risk: bool = False
    """Whether the SLA monitor announced it at risk (``sla_at_risk``) before its outcome."""


def sla(history: History, window: Window, by: str | None = None, marketing: bool = False) -> Report:
    """Per policy, rep or team, for assignments made within the window: clocks met (stopped by
    the rep before the deadline), breached (the monitor said so), open (neither yet);
    compliance = met / (met + breached); warnings, escalations, reassignments and recycles;
    clocks forecast at risk and the forecasts' precision and recall (:func:`forecast_accuracy`).

    With ``marketing`` (the definitions have ``sla.marketing``), ``by=policy`` adds the row of
    policy ``marketing``: one clock per lead recycled within the window (see
    :func:`marketing_outcome`)."""
    dim = dimension(by, SLA_BY)
    chosen = [a for a in history.assignments if window.holds(a.assigned_at) and a.policy]
    label = _label(dim)
    rows = [
        _row(history, dim, group, members) for group, members in grouped(chosen, label, dim).items()
    ]
    if marketing and dim == "policy":
        rows.append(_marketing_row(history, window))
    return Report("sla", window, dim, tuple(rows))


def marketing_outcome(history: History, recycle: Recycle) -> str:
    """What became of marketing's clock on ``recycle``: ``breached`` when the monitor said so,
    ``met`` when the MAP acknowledged the lead after the recycle, else ``open`` (as in the
    monitor, only an acknowledgement ends the clock, which it started under the recycle's id)."""
    if _breached(history, recycle.event_id, MARKETING_CLOCK):
        return "breached"
    acknowledged = any(
        a.lead_key == recycle.lead_key and a.at >= recycle.at for a in history.acknowledgements
    )
    return "met" if acknowledged else "open"


def clocks(history: History, assignment: Assignment) -> list[Clock]:
    """The clocks ``assignment`` started, each with its outcome."""
    found = []
    for kind, due in (
        ("first_touch", assignment.first_touch_due),
        ("acceptance", assignment.acceptance_due),
    ):
        if due is not None:
            outcome = _outcome(history, assignment, kind, due)
            flagged = _signalled(history, "at_risk", assignment.assignment_id, kind)
            found.append(Clock(assignment, kind, due, outcome, flagged))
    return found


def forecast_accuracy(found: Iterable[Clock]) -> tuple[float | None, float | None]:
    """(precision, recall) of the at-risk forecasts against what happened, over the clocks
    decided (met or breached). Precision: of the clocks forecast at risk, the share that
    breached; recall: of the clocks that breached, the share forecast at risk. None where there
    is nothing to divide. A clock whose lead was handed on because of the forecast is neither met
    nor breached, so it counts in neither (what would have happened is not known)."""
    decided = [(c.at_risk, c.outcome == "breached") for c in found if c.outcome != "open"]
    hits = sum(1 for flagged, breached in decided if flagged and breached)
    flagged = sum(1 for f, _ in decided if f)
    breached = sum(1 for _, b in decided if b)
    return rate(hits, flagged), rate(hits, breached)


def _label(dim: str) -> Callable[[Assignment], str | None]:
    def label(assignment: Assignment) -> str | None:
        if dim == ALL:
            return ALL
        return {"policy": assignment.policy, "rep": assignment.rep_id, "team": assignment.team}[dim]

    return label


def _breached(history: History, clock_owner: str, kind: str) -> bool:
    """Whether the monitor announced the breach of clock ``kind`` of ``clock_owner`` (an
    assignment id, or a recycle's event id for marketing's clock)."""
    return _signalled(history, "breached", clock_owner, kind)


def _signalled(history: History, signal: str, clock_owner: str, kind: str) -> bool:
    """Whether the monitor sent ``signal`` about clock ``kind`` of ``clock_owner``."""
    return any(
        s.kind == signal and s.assignment_id == clock_owner and s.clock == kind
        for s in history.signals
    )


def _outcome(history: History, assignment: Assignment, kind: str, due: datetime) -> str:
    if _breached(history, assignment.assignment_id, kind):
        return "breached"
    stops = (t for t in history.touches if _stops(assignment, kind, t))
    return "met" if any(t.occurred_at <= due for t in stops) else "open"


def _stops(assignment: Assignment, kind: str, touch: Touch) -> bool:
    """Whether ``touch`` is the assigned rep acting on this assignment's lead after it began."""
    mine = touch.assignment_id == assignment.assignment_id or (
        touch.assignment_id is None and touch.rep_id == assignment.rep_id
    )
    relevant = kind == "first_touch" or touch.outcome in ACCEPTING
    return (
        mine
        and relevant
        and touch.lead_key == assignment.lead_key
        and touch.occurred_at >= assignment.assigned_at
    )


def _row(history: History, dim: str, group: str, members: list[Assignment]) -> Row:
    found = [c for a in members for c in clocks(history, a)]
    row = _counts(
        history, dim, group, [c.outcome for c in found], {a.assignment_id for a in members}
    )
    precision, recall = forecast_accuracy(found)
    return {**row, "forecast_precision": precision, "forecast_recall": recall}


def _marketing_row(history: History, window: Window) -> Row:
    """Marketing's clocks are not forecast: no precision or recall."""
    chosen = [r for r in history.recycles if window.holds(r.at)]
    outcomes = [marketing_outcome(history, r) for r in chosen]
    row = _counts(history, "policy", MARKETING, outcomes, {r.event_id for r in chosen})
    return {**row, "forecast_precision": None, "forecast_recall": None}


def _counts(history: History, dim: str, group: str, outcomes: list[str], ids: set[str]) -> Row:
    """The row of clocks with ``outcomes`` whose signals name one of ``ids``."""
    met, breached = outcomes.count("met"), outcomes.count("breached")

    def signals(kind: str) -> int:
        return sum(1 for s in history.signals if s.kind == kind and s.assignment_id in ids)

    return {
        dim: group,
        "clocks": len(outcomes),
        "met": met,
        "breached": breached,
        "open": outcomes.count("open"),
        "compliance": rate(met, met + breached),
        "warnings": signals("warning"),
        "escalations": signals("escalated"),
        "reassignments": signals("reassignment_requested"),
        "recycles": sum(1 for r in history.recycles if r.assignment_id in ids),
        "at_risk": signals("at_risk"),
    }


def daily_compliance(
    history: History, window: Window, days: int = 7
) -> list[tuple[str, float | None]]:
    """Compliance of the assignments made on each of the window's last ``days`` UTC days (None
    for a day outside the window or without a decided clock)."""
    last = window.end - timedelta(microseconds=1)
    points: list[tuple[str, float | None]] = []
    for back in range(days - 1, -1, -1):
        start = datetime.combine(
            (last - timedelta(days=back)).date(), datetime.min.time(), last.tzinfo
        )
        begin, end = max(start, window.start), min(start + timedelta(days=1), window.end)
        rows = sla(history, Window(begin, end)).rows if begin < end else ()
        value = rows[0]["compliance"] if rows else None
        points.append((start.date().isoformat(), float(value) if value is not None else None))
    return points
