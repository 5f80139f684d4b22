"""Typed payloads of every LeadRelay event, field for field the JSON Schemas in ``schemas/``.

A unit test walks each model against its schema (names, required-ness, nested objects), so the
two cannot drift. Serialise with ``model_dump(mode="json", exclude_none=True)`` (``new_event``
does) so that absent optional fields are left out rather than sent as ``null``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Literal, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.errors import ContractError, FieldError, from_pydantic
from leadrelay.contracts.topics import EventType

Id = Annotated[str, Field(min_length=1, max_length=200)]
"""Identifiers: lead keys, anonymous ids, event ids, rep ids, assignment ids, form ids."""
Name = Annotated[str, Field(min_length=1, max_length=256)]
Label = Annotated[str, Field(min_length=1, max_length=100)]
Text = Annotated[str, Field(min_length=1, max_length=1000)]
Email = Annotated[str, Field(max_length=320, pattern=r"^[^A-Z\s@]+@[^A-Z\s@]+$")]
Action = Annotated[str, Field(max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Url = Annotated[str, Field(min_length=1, max_length=2048)]
Scalar = str | int | float | bool
ScalarMap = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=100)], Scalar], Field(max_length=100)
]

Source = Literal["hubspot", "marketo", "generic", "simulator"]
Stage = Literal[
    "anonymous", "lead", "mql", "sal", "sql", "opportunity", "customer", "recycled", "disqualified"
]
Grade = Literal["A", "B", "C", "D"]
Axis = Literal["fit", "engagement"]
Role = Literal["sdr", "ae"]
Route = Literal["account", "rule", "round_robin", "fallback"]
QualifiedBy = Literal["thresholds", "fast_track"]
SalesOutcome = Literal[
    "contact_attempted",
    "contacted",
    "accepted",
    "rejected",
    "qualified",
    "disqualified",
    "opportunity_created",
    "won",
    "lost",
]
SlaClock = Literal["first_touch", "acceptance", "marketing_acknowledgement"]
MarketingActivityKind = Literal["nurture_enrolled"]
RecycleReason = Literal["sla_breached", "rejected_by_sales", "disqualified", "lost", "manual"]


class Part(BaseModel):
    """A nested piece of a payload: frozen, and unknown fields refused like the schema does."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class EventPayload(Part):
    """The ``data`` of one event type, named by ``EVENT_TYPE``."""

    EVENT_TYPE: ClassVar[str]


class Profile(Part):
    """What a lead told us about themselves; every field optional."""

    first_name: Name | None = None
    last_name: Name | None = None
    company: Name | None = None
    job_title: Name | None = None
    company_size: Annotated[int, Field(ge=0)] | None = None
    industry: Name | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    phone: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    extra: ScalarMap | None = None


class LeadProfile(Profile):
    """The profile of a sales-ready lead, which always has an email."""

    email: Email


class BreakdownItem(Part):
    """One scorecard rule's contribution."""

    rule: Id
    axis: Axis
    points: float
    raw_points: float | None = None
    decay_factor: Annotated[float, Field(ge=0, le=1)] | None = None
    source_event_ids: tuple[Id, ...]
    limited_by: Label | None = None


class ActivityItem(Part):
    """One thing the lead did, summarised for sales."""

    event_id: Id
    action: Action
    url: Url | None = None
    form_id: Id | None = None
    occurred_at: AwareDatetime


class LifecycleTransition(Part):
    """One stage change and its cause."""

    from_stage: Stage
    to_stage: Stage
    at: AwareDatetime
    cause_event_id: Id | None = None
    rule: Id | None = None


class WebActivity(EventPayload):
    """Something a visitor or known lead did."""

    EVENT_TYPE = EventType.WEB_ACTIVITY.value

    lead_key: Id | None = None
    anonymous_id: Id | None = None
    email: Email | None = None
    action: Action
    url: Url | None = None
    occurred_at: AwareDatetime
    source: Source
    properties: ScalarMap | None = None

    @model_validator(mode="after")
    def _identified(self) -> Self:
        """Activity nobody can be attached to is useless (the schema's ``anyOf``)."""
        if self.lead_key is None and self.anonymous_id is None:
            raise ValueError("needs at least one of lead_key, anonymous_id")
        return self


class FormSubmitted(EventPayload):
    """A person submitted a form with their email."""

    EVENT_TYPE = EventType.FORM_SUBMITTED.value

    lead_key: Id
    email: Email
    anonymous_id: Id | None = None
    form_id: Id
    form_name: Name | None = None
    occurred_at: AwareDatetime
    source: Source
    profile: Profile


class SalesActivity(EventPayload):
    """Feedback from sales about a lead."""

    EVENT_TYPE = EventType.SALES_ACTIVITY.value

    lead_key: Id
    rep_id: Id
    outcome: SalesOutcome
    reason: Text | None = None
    occurred_at: AwareDatetime
    crm: Label | None = None
    assignment_id: Id | None = None


class MarketingActivity(EventPayload):
    """The MAP acknowledged a recycled lead (e.g. enrolled it in a nurture program)."""

    EVENT_TYPE = EventType.MARKETING_ACTIVITY.value

    lead_key: Id
    activity: MarketingActivityKind
    program: Label | None = None
    occurred_at: AwareDatetime


class LeadScored(EventPayload):
    """A lead's scores changed."""

    EVENT_TYPE = EventType.LEAD_SCORED.value

    lead_key: Id
    stage: Stage
    fit_score: float
    grade: Grade
    engagement_score: float
    breakdown: tuple[BreakdownItem, ...]
    scorecard_version: Label
    scored_at: AwareDatetime


class LeadSalesReady(EventPayload):
    """A lead became sales-ready (MQL)."""

    EVENT_TYPE = EventType.LEAD_SALES_READY.value

    lead_key: Id
    episode: Annotated[int, Field(ge=1)]
    grade: Grade
    fit_score: float
    engagement_score: float
    qualified_by: QualifiedBy
    breakdown: tuple[BreakdownItem, ...]
    profile: LeadProfile
    recent_activity: tuple[ActivityItem, ...]
    high_intent: tuple[ActivityItem, ...]
    lifecycle_history: tuple[LifecycleTransition, ...]
    scorecard_version: Label
    qualified_at: AwareDatetime


class AssignmentContext(Part):
    """The lead as sales sees it at assignment time."""

    profile: LeadProfile
    grade: Grade
    fit_score: float
    engagement_score: float
    breakdown: tuple[BreakdownItem, ...]
    recent_activity: tuple[ActivityItem, ...]
    high_intent: tuple[ActivityItem, ...]
    lifecycle_history: tuple[LifecycleTransition, ...]
    scorecard_version: Label


class TraceStep(Part):
    """One routing step and what it concluded."""

    step: Name
    outcome: Label
    detail: Annotated[str, Field(max_length=1000)]
    method: Label | None = None
    confidence: Annotated[float, Field(ge=0, le=1)] | None = None


class SkippedRep(Part):
    """A rep passed over, and why."""

    rep_id: Id
    reason: Id


class ChosenRep(Part):
    """The rep chosen, and why."""

    rep_id: Id
    reason: Text


class DecisionTrace(Part):
    """Why this rep."""

    steps: tuple[TraceStep, ...]
    skipped: tuple[SkippedRep, ...]
    chosen: ChosenRep


class SlaTerms(Part):
    """The SLA deadlines an assignment starts."""

    first_touch_due: AwareDatetime | None = None
    acceptance_due: AwareDatetime | None = None
    policy: Name | None = None


WeekdayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ShiftText = Annotated[str, Field(pattern=r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$")]


class RepSnapshot(Part):
    """What the SLA monitor needs about the chosen rep, as the roster held it at assignment.

    Hand-off owns the roster; the monitor counts the rep's deadlines in this calendar and
    escalates to this manager without reading hand-off's tables. Never the rep's email.
    """

    time_zone: Name
    working_hours: dict[WeekdayName, tuple[ShiftText, ...]]
    holidays: tuple[date, ...] = ()
    team: Name
    manager: Name | None = None


class LeadAssigned(EventPayload):
    """A sales-ready lead was assigned to a rep (or the fallback queue)."""

    EVENT_TYPE = EventType.LEAD_ASSIGNED.value

    assignment_id: Id
    lead_key: Id
    episode: Annotated[int, Field(ge=1)]
    attempt: Annotated[int, Field(ge=1)]
    rep_id: Id
    role: Role
    route: Route
    team: Name | None = None
    context: AssignmentContext
    trace: DecisionTrace
    sla: SlaTerms
    rep: RepSnapshot | None = None
    """The chosen rep's calendar and manager; absent when the lead went to a fallback queue."""
    assigned_at: AwareDatetime


class Absence(Part):
    """One out-of-office period, ``start`` inclusive, ``end`` exclusive."""

    start: AwareDatetime
    end: AwareDatetime


class RepUpdated(EventPayload):
    """The roster changed a rep: what the SLA monitor keeps about them (never the email)."""

    EVENT_TYPE = EventType.REP_UPDATED.value

    rep_id: Id
    rep: RepSnapshot
    out_of_office: tuple[Absence, ...] = ()
    active: bool
    updated_at: AwareDatetime


class LeadReassignmentRequested(EventPayload):
    """Handoff is asked to assign the lead again, excluding reps that already had it."""

    EVENT_TYPE = EventType.LEAD_REASSIGNMENT_REQUESTED.value

    lead_key: Id
    episode: Annotated[int, Field(ge=1)]
    attempt: Annotated[int, Field(ge=1)]
    exclude_rep_ids: tuple[Id, ...]
    reason: Text
    requested_at: AwareDatetime
    previous_assignment_id: Id | None = None

    @model_validator(mode="after")
    def _unique_exclusions(self) -> Self:
        """Mirrors the schema's ``uniqueItems``."""
        if len(set(self.exclude_rep_ids)) != len(self.exclude_rep_ids):
            raise ValueError("exclude_rep_ids must not contain duplicates")
        return self


class SlaClockEvent(EventPayload):
    """The shape shared by the three SLA events."""

    clock_id: Name
    lead_key: Id
    assignment_id: Id
    rep_id: Id
    clock: SlaClock
    policy: Name
    deadline: AwareDatetime
    fired_at: AwareDatetime
    step: Name | None = None


class SlaWarning(SlaClockEvent):
    """An SLA clock is close to its deadline."""

    EVENT_TYPE = EventType.SLA_WARNING.value


class SlaBreached(SlaClockEvent):
    """An SLA clock passed its deadline."""

    EVENT_TYPE = EventType.SLA_BREACHED.value


class SlaEscalated(SlaClockEvent):
    """A breached SLA was escalated."""

    EVENT_TYPE = EventType.SLA_ESCALATED.value

    escalated_to: Name | None = None


AtRiskReason = Literal["off_shift_before_due", "out_of_office", "slow_to_touch", "loaded"]


class SlaAtRisk(SlaClockEvent):
    """A running SLA clock is forecast to breach (``step`` is ``"forecast"``)."""

    EVENT_TYPE = EventType.SLA_AT_RISK.value

    expected_at: AwareDatetime | None = None
    reasons: Annotated[tuple[AtRiskReason, ...], Field(min_length=1)]
    reassignment_requested: bool

    @model_validator(mode="after")
    def _unique_reasons(self) -> Self:
        """Mirrors the schema's ``uniqueItems``."""
        if len(set(self.reasons)) != len(self.reasons):
            raise ValueError("reasons must not contain duplicates")
        return self


class StageAttributes(Part):
    """What reports slice a transition by, as known when it happened."""

    source: Source | None = None
    channel: Label | None = None
    segment: Label | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    grade: Grade | None = None
    rep_id: Id | None = None
    team: Name | None = None


class LeadStageChanged(EventPayload):
    """A lead moved from one lifecycle stage to another."""

    EVENT_TYPE = EventType.LEAD_STAGE_CHANGED.value

    lead_key: Id
    from_stage: Stage
    to_stage: Stage
    at: AwareDatetime
    episode: Annotated[int, Field(ge=0)]
    cause_event_id: Id
    rule: Id
    note: Text | None = None
    attributes: StageAttributes


class LeadRecycled(EventPayload):
    """A lead went back to marketing nurture."""

    EVENT_TYPE = EventType.LEAD_RECYCLED.value

    lead_key: Id
    reason: RecycleReason
    detail: Text | None = None
    rep_id: Id | None = None
    assignment_id: Id | None = None
    recycled_at: AwareDatetime


EVENT_MODELS: dict[str, type[EventPayload]] = {
    model.EVENT_TYPE: model
    for model in (
        WebActivity,
        FormSubmitted,
        SalesActivity,
        MarketingActivity,
        LeadScored,
        LeadSalesReady,
        LeadAssigned,
        LeadReassignmentRequested,
        SlaWarning,
        SlaBreached,
        SlaEscalated,
        SlaAtRisk,
        LeadStageChanged,
        LeadRecycled,
        RepUpdated,
    )
}
"""Event type -> payload model."""

P = TypeVar("P", bound=EventPayload)


def parse_data(event: CloudEvent) -> EventPayload:
    """The typed payload of any known event; ``ContractError`` with pointers otherwise."""
    model = EVENT_MODELS.get(event.type)
    if model is None:
        raise ContractError([FieldError("/type", "is not a known LeadRelay event type")])
    return parse_as(event, model)


def parse_as(event: CloudEvent, model: type[P]) -> P:
    """The payload as ``model``, for handlers that know which type they handle."""
    if event.type != model.EVENT_TYPE:
        raise ContractError([FieldError("/type", f"expected {model.EVENT_TYPE}")])
    try:
        return model.model_validate(event.data)
    except ValidationError as error:
        raise from_pydantic(error, ("data",)) from None
