"""The facts reports are computed from, one frozen value per consumed event.

Reporting keeps only what the public topics say: stage changes (lifecycle), assignments and
reassignment requests, sales activity, SLA events, recycles and engagement scores. ``History``
holds them all; every report is a pure function of a history, a window and a dimension.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

MAIN_PATH: tuple[str, ...] = ("lead", "mql", "sal", "sql", "opportunity", "customer")
"""The funnel's stages in order; ``recycled`` and ``disqualified`` are exits from it."""
EXITS: tuple[str, ...] = ("recycled", "disqualified")
T = TypeVar("T")
NONE_LABEL = "(none)"
"""The group of facts whose dimension is unknown (an unassigned lead has no rep)."""


@dataclass(frozen=True)
class StageChange:
    """One lifecycle transition with the attributes it was announced with."""

    event_id: str
    lead_key: str
    from_stage: str
    to_stage: str
    at: datetime
    episode: int
    rule: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    """A lead given to a rep (or a fallback queue) within an episode."""

    assignment_id: str
    lead_key: str
    episode: int
    attempt: int
    rep_id: str
    team: str | None
    route: str
    qualified_at: datetime
    assigned_at: datetime
    policy: str | None = None
    first_touch_due: datetime | None = None
    acceptance_due: datetime | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    """(rep id, reason) of every rep passed over."""
    reason: str = ""
    """Why this rep, in the router's words."""


@dataclass(frozen=True)
class Touch:
    """Sales activity on a lead (every outcome is a touch: a person acted on the lead)."""

    event_id: str
    lead_key: str
    rep_id: str
    outcome: str
    occurred_at: datetime
    assignment_id: str | None = None


@dataclass(frozen=True)
class SlaSignal:
    """An SLA warning, breach or escalation; or a reassignment requested after a breach."""

    event_id: str
    kind: str
    """``warning``, ``breached``, ``escalated``, ``at_risk`` (the monitor's forecast said the
    clock would not be met) or ``reassignment_requested``."""
    lead_key: str
    assignment_id: str
    clock: str | None
    at: datetime


@dataclass(frozen=True)
class Recycle:
    """A lead sent back to marketing, and why."""

    event_id: str
    lead_key: str
    reason: str
    rep_id: str | None
    assignment_id: str | None
    at: datetime


@dataclass(frozen=True)
class Acknowledgement:
    """The MAP acknowledged a recycled lead (``activity``: e.g. ``nurture_enrolled``)."""

    event_id: str
    lead_key: str
    activity: str
    at: datetime


@dataclass(frozen=True)
class Engagement:
    """A lead's engagement score at one moment (from ``lead_scored``)."""

    event_id: str
    lead_key: str
    score: float
    at: datetime


@dataclass(frozen=True)
class History:
    """Every fact reporting holds; each tuple sorted by time, then by id (a stable order)."""

    changes: tuple[StageChange, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    touches: tuple[Touch, ...] = ()
    signals: tuple[SlaSignal, ...] = ()
    recycles: tuple[Recycle, ...] = ()
    engagement: tuple[Engagement, ...] = ()
    acknowledgements: tuple[Acknowledgement, ...] = ()

    @classmethod
    def of(
        cls,
        changes: Iterable[StageChange] = (),
        assignments: Iterable[Assignment] = (),
        touches: Iterable[Touch] = (),
        signals: Iterable[SlaSignal] = (),
        recycles: Iterable[Recycle] = (),
        engagement: Iterable[Engagement] = (),
        acknowledgements: Iterable[Acknowledgement] = (),
    ) -> History:
        """A history from facts in any order."""
        return cls(
            tuple(sorted(changes, key=lambda c: (c.at, c.event_id))),
            tuple(sorted(assignments, key=lambda a: (a.assigned_at, a.assignment_id))),
            tuple(sorted(touches, key=lambda t: (t.occurred_at, t.event_id))),
            tuple(sorted(signals, key=lambda s: (s.at, s.event_id))),
            tuple(sorted(recycles, key=lambda r: (r.at, r.event_id))),
            tuple(sorted(engagement, key=lambda e: (e.at, e.event_id))),
            tuple(sorted(acknowledgements, key=lambda a: (a.at, a.event_id))),
        )

    @classmethod
    def from_facts(cls, facts: Iterable[object]) -> History:
        """A history from facts of every kind, mixed."""
        mixed = list(facts)

        def of_kind(kind: type[T]) -> list[T]:
            return [f for f in mixed if isinstance(f, kind)]

        return cls.of(
            of_kind(StageChange), of_kind(Assignment), of_kind(Touch), of_kind(SlaSignal),
            of_kind(Recycle), of_kind(Engagement), of_kind(Acknowledgement),
        )  # fmt: skip

    def assignment(self, assignment_id: str) -> Assignment | None:
        return next((a for a in self.assignments if a.assignment_id == assignment_id), None)

    def assignment_at(self, lead_key: str, at: datetime) -> Assignment | None:
        """The lead's latest assignment made at or before ``at``."""
        found = None
        for candidate in self.assignments:
            if candidate.lead_key == lead_key and candidate.assigned_at <= at:
                found = candidate
        return found
