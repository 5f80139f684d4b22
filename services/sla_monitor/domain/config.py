"""The ``sla:`` section of the definitions file: business calendars and SLA policies.

Every model refuses unknown keys, so a misspelt ``wihtin`` is an error located at its key instead of
a silently missing SLA. ``services/sla_monitor/default_sla.yaml`` is the annotated example.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from leadrelay.calendar import (
    BusinessCalendar,
    parse_time_zone,
    parse_weekly_hours,
)
from leadrelay.durations import DURATION_PATTERN, Duration, TimeBasis, parse_duration
from leadrelay.public_holidays import HolidayEntry, holiday_dates, parse_holiday
from services.sla_monitor.domain.warn_rules import WarnRule, parse_warn_rule

DEFAULT = "default"
"""The name of the calendar and of the policy used when nothing more specific applies."""

DEFAULT_SLA_FILE = Path(__file__).resolve().parent.parent / "default_sla.yaml"
"""The shipped ``sla:`` section (read it with a YAML loader, then :func:`load_sla`)."""

Role = Literal["sdr", "ae"]
OutOfOfficePolicy = Literal["pause", "hand_on"]
AtRiskPolicy = Literal["announce", "reassign"]
Route = Literal["account", "rule", "round_robin", "fallback"]

DurationText = Annotated[
    Duration,
    PlainValidator(parse_duration),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": ["1bh"]}),
]
HolidayText = Annotated[
    HolidayEntry,
    PlainValidator(parse_holiday),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["2026-12-24", "US", "DE-BY"]}),
]
WarnText = Annotated[
    WarnRule,
    PlainValidator(parse_warn_rule),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["75%", "15bm before"]}),
]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarConfig(_Config):
    """A named business calendar; ``weekly_hours`` left out means Monday-Friday 09:00-17:00."""

    time_zone: str
    weekly_hours: dict[str, tuple[str, ...]] | None = None
    holidays: tuple[HolidayText, ...] = ()
    """Explicit dates (``2026-12-24``) and regions whose public holidays count (``US``,
    ``DE-BY``), from the ``holidays`` package."""

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        parse_time_zone(value)
        return value

    @field_validator("weekly_hours")
    @classmethod
    def _valid_hours(
        cls, value: dict[str, tuple[str, ...]] | None
    ) -> dict[str, tuple[str, ...]] | None:
        if value is not None:
            parse_weekly_hours(value)
        return value

    def to_calendar(self) -> BusinessCalendar:
        days = holiday_dates(self.holidays)
        return BusinessCalendar.from_parts(self.time_zone, self.weekly_hours, days)


class AppliesTo(_Config):
    """Which assignments a policy covers; a field left out matches anything."""

    role: Role | None = None
    route: Route | None = None
    team: str | None = None

    def matches(self, role: str, route: str, team: str | None) -> bool:
        return (
            self.role in (None, role) and self.route in (None, route) and self.team in (None, team)
        )

    @property
    def is_empty(self) -> bool:
        return self.role is None and self.route is None and self.team is None


class ClockPolicy(_Config):
    """One clock: its deadline ``within`` and an optional warning."""

    within: DurationText
    warn_at: WarnText | None = None

    @model_validator(mode="after")
    def _warning_fits(self) -> ClockPolicy:
        before = self.warn_at.before if self.warn_at is not None else None
        if before is None:
            return self
        if before.basis is not self.within.basis:
            raise ValueError(
                f"warn_at {self.warn_at} counts {before.basis} time but within {self.within}"
                f" counts {self.within.basis} time; use the same kind or a percentage"
            )
        within = self.within.fixed
        assert before.fixed is not None
        if within is not None and before.fixed >= within:
            raise ValueError(f"warn_at {self.warn_at} must be shorter than within {self.within}")
        return self


class _Step(_Config):
    after: DurationText | None = None
    """Time after the previous step (the deadline for the first step).

    Unset: the first step applies at the breach, each later one after another ``within`` period.
    """


class EscalateStep(_Step):
    action: Literal["escalate"]
    to: str = Field(default="manager", min_length=1)


class ReassignStep(_Step):
    action: Literal["reassign"]
    max: int = Field(ge=1)
    """How often a lead may be reassigned in one sales-ready episode; then the step is skipped."""


class RecycleStep(_Step):
    action: Literal["recycle"]
    reason: Literal["sla_breached"] = "sla_breached"


LadderStep = Annotated[EscalateStep | ReassignStep | RecycleStep, Field(discriminator="action")]


class SlaPolicy(_Config):
    """The clocks started for an assignment and what happens when one of them is breached."""

    id: str = Field(min_length=1)
    applies_to: AppliesTo = AppliesTo()
    calendar: str = DEFAULT
    """The calendar used when the rep has none of their own."""
    first_touch: ClockPolicy | None = None
    acceptance: ClockPolicy | None = None
    on_breach: tuple[LadderStep, ...] = ()
    out_of_office: OutOfOfficePolicy = "pause"
    """What the rep's out-of-office does to a running first-touch clock: ``pause`` stops its
    business time while they are away (the deadline moves later), ``hand_on`` asks hand-off to
    reassign the lead when an absence begins before the deadline."""
    at_risk: AtRiskPolicy = "announce"
    """What a forecast that a running clock will not be met does: ``announce`` publishes
    ``sla_at_risk`` once for the clock; ``reassign`` also asks hand-off for another rep before
    the breach, for a first-touch clock (acceptance takes days and is the rep's to hand over)."""

    @model_validator(mode="after")
    def _coherent(self) -> SlaPolicy:
        if self.first_touch is None and self.acceptance is None:
            raise ValueError("a policy needs first_touch, acceptance or both")
        actions = [step.action for step in self.on_breach]
        if actions.count("reassign") > 1:
            raise ValueError("on_breach: at most one reassign step (its max counts every time)")
        if "recycle" in actions[:-1]:
            raise ValueError("on_breach: recycle ends the ladder, so it must be the last step")
        if self.id == DEFAULT and not self.applies_to.is_empty:
            raise ValueError("the default policy applies to everything: remove applies_to")
        return self


MARKETING = "marketing"
"""The id of marketing's policy, the owner of its clocks (``rep_id``) and their ``role``."""


class MarketingPolicy(_Config):
    """Marketing's side: how soon the MAP must acknowledge a recycled lead (e.g. enrol it in
    nurture), counted in ``calendar``; ``on_breach`` may only escalate, to a named owner
    (marketing has no rep snapshot, so ``manager`` would reach nobody)."""

    acknowledge: ClockPolicy
    calendar: str = DEFAULT
    on_breach: tuple[EscalateStep, ...] = ()

    @field_validator("on_breach")
    @classmethod
    def _named_owner(cls, steps: tuple[EscalateStep, ...]) -> tuple[EscalateStep, ...]:
        if any(step.to == "manager" for step in steps):
            raise ValueError(
                "marketing escalates to a named owner (e.g. marketing-ops), not manager"
            )
        return steps


class SlaConfig(_Config):
    """The whole ``sla:`` section."""

    calendars: dict[str, CalendarConfig]
    policies: tuple[SlaPolicy, ...]
    marketing: MarketingPolicy | None = None
    """Left out: recycled leads start no clock."""
    clock_skew: DurationText = Duration(5, "m")
    """How far a CRM's clock may run behind ours: sales activity that names no assignment
    counts for the rep's assignment that started up to this long after the activity's time."""

    @field_validator("clock_skew")
    @classmethod
    def _wall_clock_skew(cls, value: Duration) -> Duration:
        if value.basis is not TimeBasis.WALL:
            raise ValueError(f"clock_skew is real time: use m or h, not {value}")
        return value

    @property
    def skew(self) -> timedelta:
        """``clock_skew`` as a length of time."""
        fixed = self.clock_skew.fixed
        assert fixed is not None  # a wall-clock unit always has a fixed length
        return fixed

    @model_validator(mode="after")
    def _references(self) -> SlaConfig:
        if DEFAULT not in self.calendars:
            raise ValueError("calendars: a calendar named 'default' is required")
        ids = [policy.id for policy in self.policies]
        duplicates = sorted({name for name in ids if ids.count(name) > 1})
        if duplicates:
            raise ValueError(f"policies: duplicate id(s) {', '.join(duplicates)}")
        if DEFAULT not in ids:
            raise ValueError("policies: a policy with id 'default' is required")
        if MARKETING in ids:
            raise ValueError(f"policies: the id {MARKETING!r} is marketing's (the marketing key)")
        named = [(f"policies: {p.id}", p.calendar) for p in self.policies]
        if self.marketing is not None:
            named.append(("marketing", self.marketing.calendar))
        for where, calendar in named:
            if calendar not in self.calendars:
                raise ValueError(
                    f"{where} uses calendar {calendar!r},"
                    f" which is not among calendars ({', '.join(sorted(self.calendars))})"
                )
        return self

    def policy_for(self, role: str, route: str, team: str | None = None) -> SlaPolicy:
        """The first listed policy whose ``applies_to`` matches; else the ``default`` policy."""
        default = next(policy for policy in self.policies if policy.id == DEFAULT)
        return next(
            (
                policy
                for policy in self.policies
                if policy.id != DEFAULT and policy.applies_to.matches(role, route, team)
            ),
            default,
        )

    def policy(self, policy_id: str | None) -> SlaPolicy | None:
        """The policy with this id, or None when there is none (or no id)."""
        return next((policy for policy in self.policies if policy.id == policy_id), None)

    def calendar(self, name: str = DEFAULT) -> BusinessCalendar:
        """A named calendar, for reps without their own (``KeyError`` if it does not exist)."""
        return self.built_calendars[name]

    @cached_property
    def built_calendars(self) -> dict[str, BusinessCalendar]:
        """Every named calendar, built once: each assignment's deadlines count in one, and a
        calendar kept remembers the working intervals of the days it was asked."""
        return {name: config.to_calendar() for name, config in self.calendars.items()}


def load_sla(mapping: Mapping[str, Any]) -> SlaConfig:
    """Validate the value of the ``sla:`` key; a pydantic ``ValidationError`` locates each error."""
    return SlaConfig.model_validate(mapping)
