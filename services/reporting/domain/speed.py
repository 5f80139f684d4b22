"""Speed to lead: from the qualifying moment to assignment (system time) and to first touch
(human time), in wall-clock and in business time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.reporting.domain.facts import Assignment, History, Touch
from services.reporting.domain.report import ALL, Report, Row, dimension, grouped, seconds
from services.reporting.domain.stats import Window, quantile, share_within

SPEED_BY = ("rep", "team")
BusinessTime = Callable[[datetime, datetime], timedelta]
"""Business time elapsed between two instants, in the calendar SLAs count in."""
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p95", 0.95))
FIVE_MINUTES, ONE_HOUR = 300.0, 3600.0


@dataclass(frozen=True)
class Episode:
    """One sales-ready episode: when it qualified, its first assignment and its first touch."""

    qualified_at: datetime
    first: Assignment
    touch: Touch | None
    touched_by: Assignment

    def wall(self, until: datetime | None) -> float | None:
        return None if until is None else (until - self.qualified_at).total_seconds()

    def business(self, until: datetime | None, business_time: BusinessTime) -> float | None:
        if until is None:
            return None
        return business_time(self.qualified_at, until).total_seconds()


def speed_to_lead(
    history: History, window: Window, business_time: BusinessTime, by: str | None = None
) -> Report:
    """Per rep or team (of the assignment that got the first touch; the first assignment's
    while untouched), for the episodes that qualified within the window: p50/p90/p95 of the
    time to assignment and to first touch, wall and business, and the share touched within
    5 minutes and 1 hour of qualifying (an untouched lead counts as not within)."""
    dim = dimension(by, SPEED_BY)
    chosen = [e for e in episodes(history) if window.holds(e.qualified_at)]

    def label(episode: Episode) -> str | None:
        holder = episode.touched_by
        return ALL if dim == ALL else holder.team if dim == "team" else holder.rep_id

    rows = [
        _row(dim, group, members, business_time)
        for group, members in grouped(chosen, label, dim).items()
    ]
    return Report("speed-to-lead", window, dim, tuple(rows))


def episodes(history: History) -> list[Episode]:
    """Each (lead, episode) with its first assignment and first touch after it."""
    by_episode: dict[tuple[str, int], list[Assignment]] = defaultdict(list)
    for assignment in history.assignments:
        by_episode[assignment.lead_key, assignment.episode].append(assignment)
    found = []
    for attempts in by_episode.values():
        first = min(attempts, key=lambda a: a.attempt)
        ids = {a.assignment_id for a in attempts}
        touch = next(
            (
                t
                for t in history.touches
                if t.lead_key == first.lead_key
                and t.occurred_at >= first.assigned_at
                and (t.assignment_id is None or t.assignment_id in ids)
            ),
            None,
        )
        holder = _touched_assignment(attempts, touch) or first
        found.append(Episode(first.qualified_at, first, touch, holder))
    return found


def _touched_assignment(attempts: list[Assignment], touch: Touch | None) -> Assignment | None:
    if touch is None:
        return None
    named = [a for a in attempts if a.assignment_id == touch.assignment_id]
    live = [a for a in attempts if a.assigned_at <= touch.occurred_at]
    found = named or live
    return found[-1] if found else None


def _row(dim: str, group: str, members: list[Episode], business_time: BusinessTime) -> Row:
    assigned = [e.first.assigned_at for e in members]
    touched = [e.touch.occurred_at if e.touch else None for e in members]
    row: Row = {dim: group, "leads": len(members), "touched": sum(1 for t in touched if t)}
    for name, clocks in (("assignment", assigned), ("first_touch", touched)):
        wall = [e.wall(t) for e, t in zip(members, clocks, strict=True)]
        busy = [e.business(t, business_time) for e, t in zip(members, clocks, strict=True)]
        for label, q in QUANTILES:
            row[f"{name}_{label}_seconds"] = seconds(quantile(_known(wall), q))
            row[f"{name}_{label}_business_seconds"] = seconds(quantile(_known(busy), q))
    first_touch = [e.wall(t) for e, t in zip(members, touched, strict=True)]
    row["touched_within_5m"] = share_within(first_touch, FIVE_MINUTES)
    row["touched_within_1h"] = share_within(first_touch, ONE_HOUR)
    return row


def _known(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


TOUCH_BUCKETS: tuple[tuple[str, float], ...] = (
    ("under 5 min", FIVE_MINUTES),
    ("5-60 min", ONE_HOUR),
    ("1-4 h", 4 * ONE_HOUR),
    ("4-24 h", 24 * ONE_HOUR),
    ("over 1 day", float("inf")),
)


def first_touch_distribution(history: History, window: Window) -> list[tuple[str, int]]:
    """How many episodes qualifying within the window were first touched within each bucket of
    wall time after qualifying, and how many not at all."""
    waits = [e.wall(e.touch.occurred_at if e.touch else None) for e in episodes(history)
             if window.holds(e.qualified_at)]  # fmt: skip
    counts = []
    lower = -1.0
    for label, upper in TOUCH_BUCKETS:
        counts.append((label, sum(1 for w in waits if w is not None and lower < w <= upper)))
        lower = upper
    return [*counts, ("not touched", sum(1 for w in waits if w is None))]
