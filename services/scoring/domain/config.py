"""The ``scorecard:`` section of the definitions file, as marketing and sales write it.

Every model refuses unknown keys and is frozen, so a misspelt ``pionts`` is an error located at
its key rather than a rule that silently scores nothing. Cross-references (fast-track rule ids,
named domain lists, unique rule ids) are checked here too and reported at the offending key, e.g.
``scorecard.fast_track.rules.0: unknown engagement rule 'demo'``.
``services/scoring/default_scorecard.yaml`` is the annotated example.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, Final, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from leadrelay.durations import ElapsedText, format_elapsed
from leadrelay.memo import Memo
from services.scoring.domain.model import PROFILE_FIELDS, FitResult, Grade

Loc = tuple[str | int, ...]

_RULE_ID: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_LIST_NAME: Final = r"^[a-z][a-z0-9_]*$"
_DOMAIN: Final = re.compile(
    r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$"
)
_OPERATORS: Final = ("equals", "in", "range", "contains", "regex", "email_domain_in")
_YAML_BOOL_HINT: Final = (
    "YAML read this as true/false; put quotes around it (e.g. 'NO' for Norway, 'ON' for Ontario)"
)


def _fail(title: str, problems: Iterable[tuple[Loc, str, object]]) -> None:
    """Raise one ValidationError whose errors sit at ``loc`` below the model being validated.

    Pydantic prefixes the locations with the path to this model, so the user sees
    ``scorecard.fit.rules.3.email_domain_in`` instead of a message on the whole scorecard.
    """
    details = [
        InitErrorDetails(
            type=PydanticCustomError("scorecard", "{message}", {"message": message}),
            loc=loc,
            input=value,
        )
        for loc, message, value in problems
    ]
    if details:
        raise ValidationError.from_exception_data(title, details)


Duration = ElapsedText
"""A duration written ``"90m"``, ``"36h"``, ``"14d"`` or ``"2w"``."""


def _grade(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


GradeName = Annotated[Grade, BeforeValidator(_grade)]
RuleId = Annotated[str, Field(pattern=_RULE_ID)]


def _scalar(value: object) -> str | bool | int | float:
    if isinstance(value, str | bool | int | float):
        return value
    raise ValueError(f"expected text or a number, got {value!r}")


Scalar = Annotated[str | bool | int | float, PlainValidator(_scalar)]
"""A single value to compare with (one error message instead of one per union member)."""


def _version(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError(
            f"write the version as quoted text, e.g. version: '2024-06' (got {value!r})"
        )
    return value


def _domain(value: object) -> str:
    domain = value.strip().lower().lstrip("@") if isinstance(value, str) else ""
    if not _DOMAIN.match(domain):
        raise ValueError(
            f"{value!r} is not an email domain (e.g. 'gmail.com', or 'edu' for *.edu);"
            " to use a list from fit.domain_lists write email_domain_in: <list name>"
        )
    return domain


def _domains_or_list(value: object) -> str | tuple[str, ...]:
    """A list name (text) or a non-empty list of domains, each error at its own index."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(
            "expected a list of email domains or the name of a list in fit.domain_lists"
        )
    domains: list[str] = []
    problems: list[tuple[Loc, str, object]] = []
    for index, item in enumerate(value):
        try:
            domains.append(_domain(item))
        except ValueError as exc:
            problems.append(((index,), str(exc), item))
    _fail("email_domain_in", problems)
    return tuple(domains)


EmailDomain = Annotated[str, PlainValidator(_domain)]
DomainsOrList = Annotated[str | tuple[str, ...], PlainValidator(_domains_or_list)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Config):
    """Numeric band: ``min`` inclusive, ``max`` exclusive, either may be left out."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            _fail(
                "Range",
                [(("max",), f"max ({self.max:g}) must be above min ({self.min:g})", self.max)],
            )
        return self

    def contains(self, number: float) -> bool:
        return (self.min is None or number >= self.min) and (self.max is None or number < self.max)


class GroupLimit(_Config):
    """A rule group's limit: its rules together give at most ``cap`` points."""

    cap: float = Field(ge=0)
    description: str | None = None


class AxisLimits(_Config):
    """HubSpot-style limits on one axis: per-group caps and a cap on the axis's total.

    Rules name their ``group``; a group's positive points are filled in the order its rules
    are listed until the group's ``cap``, then the axis's positive points until ``total_cap``.
    Negative points are never limited (a floor is a rule's own ``cap``).
    """

    groups: Mapping[RuleId, GroupLimit] = Field(default_factory=dict)
    total_cap: float | None = Field(default=None, ge=0)

    def check_groups(
        self, rules: Iterable[tuple[int, str | None]]
    ) -> list[tuple[Loc, str, object]]:
        """A problem for every rule (index, group) naming a group that is not defined."""
        known = ", ".join(sorted(self.groups)) or "none defined"
        return [
            (("rules", index, "group"), f"unknown group {group!r} (groups: {known})", group)
            for index, group in rules
            if group is not None and group not in self.groups
        ]


class FitRule(_Config):
    """Points for who the lead is: ``field`` compared with exactly one operator.

    Text comparisons ignore case; ``regex`` is a case-insensitive search anywhere in the value;
    ``email_domain_in`` matches the email's domain or any subdomain of a listed one and takes a
    list of domains or the name of a list under ``fit.domain_lists``. A missing value never matches.
    """

    id: RuleId
    field: str
    equals: Scalar | None = None
    in_: tuple[Scalar, ...] | None = Field(default=None, alias="in", min_length=1)
    range: Range | None = None
    contains: str | None = Field(default=None, min_length=1)
    regex: str | None = None
    email_domain_in: DomainsOrList | None = None
    points: float
    group: RuleId | None = None
    description: str | None = None

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        if value in PROFILE_FIELDS or (value.startswith("extra.") and len(value) > len("extra.")):
            return value
        known = ", ".join(sorted(PROFILE_FIELDS))
        raise ValueError(f"unknown field {value!r}; use one of {known}, or extra.<key>")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_operator(self) -> Self:
        given = [name for name in _OPERATORS if self.operand(name) is not None]
        if len(given) != 1:
            found = ", ".join(given) or "none"
            raise ValueError(f"give exactly one operator of {', '.join(_OPERATORS)}; found {found}")
        if self.email_domain_in is not None and self.field != "email":
            _fail("FitRule", [(("field",), "email_domain_in needs field: email", self.field)])
        self._refuse_yaml_booleans()
        return self

    def operand(self, operator: str) -> object:
        """The value given for ``operator`` (``in`` is stored as ``in_``)."""
        return self.in_ if operator == "in" else getattr(self, operator)

    def _refuse_yaml_booleans(self) -> None:
        """``country: NO`` reaches us as ``False``; only ``extra.*`` fields can be true/false."""
        if self.field.startswith("extra."):
            return
        problems: list[tuple[Loc, str, object]] = []
        if isinstance(self.equals, bool):
            problems.append((("equals",), _YAML_BOOL_HINT, self.equals))
        for index, item in enumerate(self.in_ or ()):
            if isinstance(item, bool):
                problems.append((("in", index), _YAML_BOOL_HINT, item))
        _fail("FitRule", problems)


class FitConfig(_Config):
    """Fit rules plus named domain lists (``free_mail``, ``competitors``...) they can refer to."""

    domain_lists: Mapping[Annotated[str, Field(pattern=_LIST_NAME)], tuple[EmailDomain, ...]] = (
        Field(default_factory=dict)
    )
    rules: tuple[FitRule, ...] = ()
    limits: AxisLimits = AxisLimits()

    @model_validator(mode="after")
    def _lists_exist(self) -> Self:
        problems = self.limits.check_groups((i, rule.group) for i, rule in enumerate(self.rules))
        for index, rule in enumerate(self.rules):
            loc: Loc = ("rules", index, "email_domain_in")
            ref = rule.email_domain_in
            if isinstance(ref, str) and ref not in self.domain_lists:
                known = ", ".join(sorted(self.domain_lists)) or "none defined"
                problems.append(
                    (loc, f"unknown domain list {ref!r} (fit.domain_lists: {known})", ref)
                )
            for pos, domain in enumerate(ref if isinstance(ref, tuple) else ()):
                if domain in self.domain_lists:
                    hint = f"{domain!r} is a domain list; write email_domain_in: {domain}"
                    problems.append(((*loc, pos), hint, domain))
        _fail("FitConfig", problems)
        return self

    def domains(self, rule: FitRule) -> tuple[str, ...]:
        """The domains a rule's ``email_domain_in`` stands for, named lists resolved."""
        ref = rule.email_domain_in
        if ref is None:
            return ()
        return self.domain_lists[ref] if isinstance(ref, str) else ref

    @cached_property
    def reads(self) -> tuple[str, ...]:
        """The profile values the rules read (``email_domain`` for ``email_domain_in``): all a
        fit result depends on, besides this section and the grades."""
        names = {"email_domain" if r.email_domain_in is not None else r.field for r in self.rules}
        return tuple(sorted(names))


class EngagementRule(_Config):
    """Points for what the lead does: activities whose action (and url, form_id) match.

    ``action``, ``url`` and ``form_id`` are globs (``*`` any text, ``?`` one character); url and
    form_id ignore case. ``cap`` bounds the total undecayed points the rule can give (a floor for
    negative rules); ``window`` with ``max_per_window`` counts at most that many hits in any
    rolling window of that length. See ``evaluate_engagement`` for the exact arithmetic.
    """

    id: RuleId
    action: str = Field(min_length=1)
    url: str | None = Field(default=None, min_length=1)
    form_id: str | None = Field(default=None, min_length=1)
    points: float
    cap: float | None = None
    window: Duration | None = None
    max_per_window: int | None = Field(default=None, ge=1)
    group: RuleId | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _limits(self) -> Self:
        problems: list[tuple[Loc, str, object]] = []
        if (self.window is None) != (self.max_per_window is None):
            missing = "max_per_window" if self.max_per_window is None else "window"
            problems.append(((missing,), "window and max_per_window go together", None))
        if self.cap is not None and self.points >= 0 and self.cap < 0:
            problems.append(
                (("cap",), "cap must be >= 0 for a rule with positive points", self.cap)
            )
        if self.cap is not None and self.points < 0 and self.cap > 0:
            problems.append(
                (("cap",), "cap must be <= 0 (a floor) for a rule with negative points", self.cap)
            )
        _fail("EngagementRule", problems)
        return self


DEFAULT_RETENTION: Final = timedelta(days=365)


class EngagementConfig(_Config):
    """Decay, the rules, and how long activity is remembered at all.

    ``retention`` bounds what a lead (or an unidentified visitor) keeps: activity that occurred
    longer ago is forgotten, so state stops growing with a lead's age and visitors who never
    identify are eventually deleted. It must cover the half-life and every rule's window, so
    that forgetting only drops hits whose decayed worth is already small.
    """

    half_life: Duration
    rules: tuple[EngagementRule, ...] = ()
    retention: Duration = DEFAULT_RETENTION
    limits: AxisLimits = AxisLimits()

    @model_validator(mode="after")
    def _groups_exist(self) -> Self:
        problems = self.limits.check_groups((i, rule.group) for i, rule in enumerate(self.rules))
        _fail("EngagementConfig", problems)
        return self

    @model_validator(mode="after")
    def _retention_covers(self) -> Self:
        longest = max([self.half_life, *(r.window for r in self.rules if r.window)])
        if self.retention < longest:
            message = (
                f"retention ({format_elapsed(self.retention)}) must be at least the half-life"
                f" and every rule's window ({format_elapsed(longest)})"
            )
            _fail("EngagementConfig", [(("retention",), message, self.retention)])
        return self


class Grades(_Config):
    """Lowest fit score of each band; below C is D. Must be strictly descending."""

    A: float
    B: float
    C: float

    @model_validator(mode="after")
    def _descending(self) -> Self:
        problems: list[tuple[Loc, str, object]] = []
        if not self.B < self.A:
            problems.append((("B",), f"B ({self.B:g}) must be below A ({self.A:g})", self.B))
        if not self.C < self.B:
            problems.append((("C",), f"C ({self.C:g}) must be below B ({self.B:g})", self.C))
        _fail("Grades", problems)
        return self

    def grade_for(self, fit_score: float) -> Grade:
        if fit_score >= self.A:
            return "A"
        if fit_score >= self.B:
            return "B"
        return "C" if fit_score >= self.C else "D"


class SalesReady(_Config):
    min_grade: GradeName
    min_engagement: float = Field(ge=0)


class FastTrack(_Config):
    """High-intent engagement rules that make a lead sales-ready at once, given minimum fit."""

    rules: tuple[RuleId, ...] = ()
    min_grade: GradeName = "C"


class RecycleConfig(_Config):
    """Anti ping-pong: what a recycled lead must do before it can be sales-ready again."""

    requires_fresh_engagement: bool = True
    min_engagement_after_recycle: float | None = Field(default=None, ge=0)


class RecycleCooldown(_Config):
    """Anti ping-pong in time (the ``lifecycle.recycle_cooldown`` section): for ``duration``
    after a recycle the lead cannot be sales-ready again, unless the activity that would
    qualify it matches one of the ``unless`` engagement rules (a demo request, say)."""

    duration: Duration = timedelta(days=14)
    unless: tuple[RuleId, ...] = ()

    def holds_back(
        self, recycled_at: datetime | None, at: datetime, rule_ids: Iterable[str]
    ) -> bool:
        """Whether a recycle at ``recycled_at`` still keeps the lead from qualifying at ``at``
        on an activity matching ``rule_ids``."""
        if recycled_at is None or at >= recycled_at + self.duration:
            return False
        return not set(self.unless).intersection(rule_ids)


class Scorecard(_Config):
    version: Annotated[str, BeforeValidator(_version), Field(min_length=1)]
    fit: FitConfig
    engagement: EngagementConfig
    grades: Grades
    sales_ready: SalesReady
    fast_track: FastTrack = FastTrack()
    recycle: RecycleConfig = RecycleConfig()

    @model_validator(mode="after")
    def _references(self) -> Self:
        problems: list[tuple[Loc, str, object]] = []
        seen: dict[str, str] = {}
        ids = [("fit", i, rule.id) for i, rule in enumerate(self.fit.rules)]
        ids += [("engagement", i, rule.id) for i, rule in enumerate(self.engagement.rules)]
        for axis, index, rule_id in ids:
            if rule_id in seen:
                message = f"duplicate rule id {rule_id!r} (also {seen[rule_id]})"
                problems.append(((axis, "rules", index, "id"), message, rule_id))
            seen.setdefault(rule_id, f"{axis}.rules[{index}]")
        engagement_ids = {rule.id for rule in self.engagement.rules}
        for index, rule_id in enumerate(self.fast_track.rules):
            if rule_id not in engagement_ids:
                message = f"unknown engagement rule {rule_id!r}"
                problems.append((("fast_track", "rules", index), message, rule_id))
        _fail("Scorecard", problems)
        return self

    def engagement_rule(self, rule_id: str) -> EngagementRule:
        return next(rule for rule in self.engagement.rules if rule.id == rule_id)

    @cached_property
    def fit_results(self) -> Memo[tuple[tuple[type, object], ...], FitResult]:
        """Fit results under this scorecard by the profile values ``fit.reads`` (type and
        value: ``True`` is not ``1``); see ``evaluate_fit``."""
        return Memo(FIT_RESULTS_KEPT)


FIT_RESULTS_KEPT: Final = 10_000
"""Most fit results a scorecard keeps."""


def load_scorecard(mapping: Mapping[str, Any]) -> Scorecard:
    """Validate the mapping under ``scorecard:``; raises pydantic's ``ValidationError``."""
    return Scorecard.model_validate(mapping)
