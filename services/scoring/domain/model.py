"""Domain values of scoring: who a lead is, what it did, its score and where it is in the lifecycle.

Everything here is a frozen dataclass so a ``LeadState`` can be handed around, compared and
stored without anyone mutating it behind the service's back. Times are timezone-aware; a naive
datetime is refused at construction, because comparing it later would fail far from the cause.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from operator import attrgetter
from typing import Final, Literal

from leadrelay.calendar import require_aware

RECENT_ACTIVITIES: Final = 50
"""How many of its newest activities a lead keeps as such (timeline, recent activity)."""

Grade = Literal["A", "B", "C", "D"]
"""Fit grade, A best. D is everything below the C band."""

GRADE_ORDER: tuple[Grade, ...] = ("D", "C", "B", "A")

Axis = Literal["fit", "engagement"]
QualifiedBy = Literal["thresholds", "fast_track"]


class Stage(StrEnum):
    """Lifecycle stages shared by every service (DESIGN.md section 2)."""

    ANONYMOUS = "anonymous"
    LEAD = "lead"
    MQL = "mql"
    SAL = "sal"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    CUSTOMER = "customer"
    RECYCLED = "recycled"
    DISQUALIFIED = "disqualified"


class ScoringError(ValueError):
    """Base of the domain errors: the fact cannot be applied to this lead."""


class InvalidTransition(ScoringError):
    """A fact that contradicts the lead's stage (e.g. a sales outcome for an anonymous visitor)."""


class UnknownOutcome(ScoringError):
    """A sales outcome outside the shared vocabulary."""


@dataclass(frozen=True)
class Activity:
    """One thing a visitor or lead did; ``event_id`` is the CloudEvent id (dedupe key)."""

    event_id: str
    action: str
    occurred_at: datetime
    url: str | None = None
    form_id: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.occurred_at, "occurred_at")


time_order: Final = attrgetter("occurred_at", "event_id")
"""The sort key of activities and of the hits kept of them: (occurred_at, event_id).

An ``attrgetter`` rather than a lambda because it runs in C: a lead's recent activities and a
rule's kept hits are sorted on every event."""


def in_time_order(activities: Iterable[Activity]) -> tuple[Activity, ...]:
    """Distinct activities (first seen wins per event id) sorted by (occurred_at, event_id).

    The one ordering every score and state uses, so arrival order never matters.
    """
    by_id: dict[str, Activity] = {}
    for activity in activities:
        by_id.setdefault(activity.event_id, activity)
    return tuple(sorted(by_id.values(), key=time_order))


@dataclass(frozen=True)
class Hit:
    """One activity as an engagement rule remembers it: which event, when it happened."""

    event_id: str
    occurred_at: datetime


@dataclass(frozen=True)
class Slice:
    """Decayed points of a rule's hits in one slice of time, as of its newest hit.

    ``value`` is the sum of ``points * 0.5 ** ((as_of - occurred_at) / half_life)``: decaying
    it to any later instant is one multiplication, however many hits it holds.
    """

    index: int
    as_of: datetime
    value: float
    hits: int


@dataclass(frozen=True)
class Tally:
    """What one engagement rule needs of a lead's history to score it at any later instant.

    A rule with a cap or a window keeps in ``kept`` the hits its newest-first walk can still
    reach (time order); a rule with neither keeps running ``slices`` (and ``fresh``: only the
    hits after the ledger's ``fresh_since``), future-dated hits waiting in ``kept`` until the
    clock reaches them, and its newest hits in ``sources`` for the breakdown. See ``ledger``.
    """

    rule: str
    kept: tuple[Hit, ...] = ()
    slices: tuple[Slice, ...] = ()
    fresh: tuple[Slice, ...] = ()
    sources: tuple[Hit, ...] = ()
    hits: int = 0
    """Decayed rules: how many hits the slices and ``kept`` hold."""


@dataclass(frozen=True)
class Ledger:
    """A lead's engagement as per-rule tallies, valid for the engagement section it was built
    under (``fingerprint``); ``fresh_since`` is the recycle the ``fresh`` slices count after."""

    fingerprint: str
    tallies: tuple[Tally, ...] = ()
    fresh_since: datetime | None = None


@dataclass(frozen=True)
class Profile:
    """Who the person is. ``None`` means unknown (or, in an update, "not provided")."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    job_title: str | None = None
    company_size: int | None = None
    industry: str | None = None
    country: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)

    def value_of(self, name: str) -> object:
        """The value a fit rule's ``field`` names: a profile attribute or ``extra.<key>``."""
        if name.startswith("extra."):
            return self.extra.get(name.removeprefix("extra."))
        return getattr(self, name, None)

    @property
    def email_domain(self) -> str | None:
        """Lower-cased domain of the email, the only part of it scoring ever looks at."""
        if self.email is None or "@" not in self.email:
            return None
        return self.email.rsplit("@", 1)[1].strip().lower() or None


PROFILE_FIELDS: frozenset[str] = frozenset(f.name for f in fields(Profile)) - {"extra"}


@dataclass(frozen=True)
class Holding:
    """An assignment of the lead, as hand-off announced it: who held it in which attempt."""

    assignment_id: str
    rep_id: str
    episode: int
    attempt: int


@dataclass(frozen=True)
class ScoreLine:
    """One rule's contribution, so marketing can show why a lead scored what it did.

    ``points`` is what counts now (decayed, rounded to 2 dp); ``raw_points`` what the rule
    awarded before decay (after caps and windows); ``decay_factor`` is ``points / raw_points``
    (1.0 for fit); ``source_event_ids`` the activities that earned it, oldest first.
    ``limited_by`` names the group or total cap that reduced ``points`` (see ``AxisLimits``).
    """

    rule: str
    axis: Axis
    points: float
    raw_points: float
    decay_factor: float
    source_event_ids: tuple[str, ...] = ()
    limited_by: str | None = None
    """``group:<name>`` or ``total`` when a group or the axis's total cap cut ``points``."""


@dataclass(frozen=True)
class FitResult:
    score: float
    grade: Grade
    breakdown: tuple[ScoreLine, ...]


@dataclass(frozen=True)
class EngagementResult:
    score: float
    breakdown: tuple[ScoreLine, ...]


@dataclass(frozen=True)
class Score:
    """A lead's score at ``scored_at`` under scorecard ``version``.

    ``qualifying_engagement`` is the engagement compared with the sales-ready threshold: equal to
    ``engagement`` except for a recycled lead, where only activity after the recycle counts.
    """

    fit: float
    engagement: float
    grade: Grade
    breakdown: tuple[ScoreLine, ...]
    version: str
    scored_at: datetime
    qualifying_engagement: float


@dataclass(frozen=True)
class StageChange:
    """One lifecycle transition and its cause: which event, which rule (and a free-text note)."""

    from_stage: Stage
    to_stage: Stage
    at: datetime
    cause_event_id: str
    rule: str
    note: str | None = None


@dataclass(frozen=True)
class IgnoredFact:
    """A fact that could not apply to the lead's stage: kept on its timeline with the reason."""

    at: datetime
    cause_event_id: str
    fact: str
    reason: str


@dataclass(frozen=True)
class LeadState:
    """Everything scoring knows about one lead; the service loads it, applies a fact, saves it.

    ``activities`` are the newest ``RECENT_ACTIVITIES`` (the timeline and a sales-ready event's
    recent activity; the archive keeps the full history), sorted by (occurred_at, event_id), so
    the same facts give the same state whatever order they arrived in. ``engagement`` is what
    scores them: per-rule tallies that do not grow with the history (None: a state stored
    before ledgers, or built by hand, whose ``activities`` are all there is; it is built from
    them). ``unscored`` are activities merged from a visitor that the ledger has not taken in
    yet (the next scoring does). ``first_form`` is the oldest remembered form fill.
    ``episode`` counts sales-ready episodes so far.
    ``recycled_at``/``recycle_reason`` describe the latest recycle. ``profile_updated_at`` is when
    the newest applied profile update happened (an older update arriving late only fills gaps).
    ``ignored`` lists the sales facts that contradicted the lead's stage, with the reason.
    ``holdings`` says who held the lead (so a rejection by a rep it was taken from is known).
    """

    lead_key: str
    stage: Stage = Stage.ANONYMOUS
    profile: Profile = field(default_factory=Profile)
    activities: tuple[Activity, ...] = ()
    anonymous_ids: tuple[str, ...] = ()
    episode: int = 0
    recycled_at: datetime | None = None
    recycle_reason: str | None = None
    history: tuple[StageChange, ...] = ()
    profile_updated_at: datetime | None = None
    ignored: tuple[IgnoredFact, ...] = ()
    holdings: tuple[Holding, ...] = ()
    """The assignments of the latest episode scoring has seen, by attempt."""
    engagement: Ledger | None = None
    unscored: tuple[Activity, ...] = ()
    first_form: Activity | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "stage", Stage(self.stage)
        )  # "mql" from a caller becomes Stage.MQL
        if self.recycled_at is not None:
            require_aware(self.recycled_at, "recycled_at")
        if self.profile_updated_at is not None:
            require_aware(self.profile_updated_at, "profile_updated_at")

    def knows_event(self, event_id: str) -> bool:
        """Whether this activity was already applied (redelivery must change nothing).

        Looks at the recent activities and every hit a rule keeps; an older one is known to the
        consume loop's inbox, which never hands the same event over twice.
        """
        if any(a.event_id == event_id for a in self.activities):
            return True
        tallies = self.engagement.tallies if self.engagement is not None else ()
        return any(h.event_id == event_id for t in tallies for h in (*t.kept, *t.sources))

    @property
    def first_form_id(self) -> str | None:
        """The form of the lead's first remembered form fill (what reports call its channel)."""
        if self.first_form is not None:
            return self.first_form.form_id
        return next((a.form_id for a in self.activities if a.form_id is not None), None)

    def changes_since(self, earlier: LeadState) -> tuple[StageChange, ...]:
        """The stage changes recorded after ``earlier`` (an older version of this state)."""
        return self.history[len(earlier.history) :]


@dataclass(frozen=True)
class Decision:
    """What applying one fact did: the new state, the score now, and whether to hand off.

    ``score`` is the score at ``now`` the decision was based on (before any stage change).
    ``became_sales_ready`` is true at most once per episode; the service emits
    ``lead_sales_ready`` exactly when it is true, and ``lead_scored`` with ``score``.
    """

    state: LeadState
    score: Score
    became_sales_ready: bool
    qualified_by: QualifiedBy | None
    stage_changes: tuple[StageChange, ...]
