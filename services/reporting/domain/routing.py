"""Routing: who got the leads against their weighted share, the fallback queues, skip reasons."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from services.reporting.domain.facts import Assignment, History
from services.reporting.domain.report import ALL, Report, Row, dimension, seconds
from services.reporting.domain.stats import Window, rate

ROUTING_BY = ("rep", "team")
FALLBACK = "fallback"


@dataclass(frozen=True)
class RosterEntry:
    """What routing promised a rep: their team and weight in the round robin."""

    team: str
    weight: int


def routing(
    history: History,
    window: Window,
    roster: Mapping[str, RosterEntry],
    by: str | None = None,
) -> Report:
    """Three kinds of rows: per rep (or team) the assignments made within the window, their
    share and the share their weight promises among the roster; per fallback queue its depth
    (leads whose latest assignment, as of the window's end, is to the queue) and the age of the
    oldest; per skip reason how often a rep was passed over for it."""
    dim = dimension(by, ROUTING_BY)
    dim = "rep" if dim == ALL else dim  # shares only mean something per rep or team
    made = [a for a in history.assignments if window.holds(a.assigned_at)]
    rows = [
        *_share_rows(dim, [a for a in made if a.route != FALLBACK], roster),
        *_queue_rows(history, window),
        *_skip_rows(made),
    ]
    return Report("routing", window, dim, tuple(rows))


def _share_rows(dim: str, made: list[Assignment], roster: Mapping[str, RosterEntry]) -> list[Row]:
    def key(rep_id: str, team: str | None) -> str:
        return rep_id if dim == "rep" else team or roster.get(rep_id, RosterEntry("", 1)).team

    counts = Counter(key(a.rep_id, a.team) for a in made)
    weights = Counter({key(rep, entry.team): 0 for rep, entry in roster.items()})
    for rep, entry in roster.items():
        weights[key(rep, entry.team)] += entry.weight
    total_weight = sum(weights.values())
    return [
        {
            "kind": dim,
            dim: name,
            "assignments": counts[name],
            "share": rate(counts[name], len(made)),
            "weighted_share": round(weights[name] / total_weight, 4) if total_weight else None,
        }
        for name in sorted(set(counts) | set(weights))
    ]


def _queue_rows(history: History, window: Window) -> list[Row]:
    latest: dict[str, Assignment] = {}
    for assignment in history.assignments:
        if assignment.assigned_at < window.end:
            latest[assignment.lead_key] = assignment
    queued = [a for a in latest.values() if a.route == FALLBACK]
    queues = sorted({a.rep_id for a in queued})
    rows: list[Row] = []
    for queue in queues:
        waiting = [a for a in queued if a.rep_id == queue]
        oldest = min(a.assigned_at for a in waiting)
        age = (window.end - oldest).total_seconds()
        rows.append(
            {
                "kind": "queue",
                "queue": queue,
                "depth": len(waiting),
                "oldest_age_seconds": seconds(age),
            }
        )
    return rows


def _skip_rows(made: list[Assignment]) -> list[Row]:
    reasons = Counter(reason for a in made for _, reason in a.skipped)
    return [
        {"kind": "skip_reason", "reason": reason, "count": count}
        for reason, count in sorted(reasons.items())
    ]
