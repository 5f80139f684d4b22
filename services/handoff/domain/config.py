"""The ``routing:`` and ``roster:`` sections of the definitions file.

Every model refuses unknown keys, so a misspelt ``territores`` is an error located at its key
instead of a rep who silently covers the whole world. References between entries (rule regions,
account owners, the fallback owner, rep territories) are checked too, and each error names the key
that is wrong. ``services/handoff/default_routing.yaml`` is the annotated example.

Territories are ISO 3166 alpha-2 country codes (``DE``; case-insensitive) or region names from
``routing.regions`` (lower case, at least three characters so a region can never be mistaken for a
country code).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
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
    Weekday,
    WorkInterval,
    parse_interval,
    parse_time_zone,
)
from leadrelay.durations import ElapsedText

DEFAULT_ROUTING_FILE = Path(__file__).resolve().parent.parent / "default_routing.yaml"
"""The shipped ``routing:`` and demo ``roster:`` sections (read with a YAML loader, then load_*)."""

Role = Literal["sdr", "ae"]
Segment = Literal["smb", "mid_market", "enterprise"]
SEGMENTS: tuple[Segment, ...] = ("smb", "mid_market", "enterprise")

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_REGION = re.compile(r"^[a-z][a-z0-9_-]{2,31}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


def _country(value: object) -> str:
    if isinstance(value, bool):
        raise ValueError("YAML reads a bare NO (Norway) as false: write it in quotes, 'NO'")
    text = value.strip().upper() if isinstance(value, str) else ""
    if not _COUNTRY.match(text):
        raise ValueError(f"expected a two-letter country code such as 'DE', got {value!r}")
    return text


def _region(value: object) -> str:
    text = value.strip().lower() if isinstance(value, str) else ""
    if not _REGION.match(text):
        raise ValueError(
            f"expected a region name of 3-32 lower-case letters, digits, '_' or '-', got {value!r}"
        )
    return text


def _territory(value: object) -> str:
    """Two letters are a country code; anything longer must look like a region name."""
    if isinstance(value, str) and len(value.strip()) == 2:
        return _country(value)
    return _region(value)


def _domain(value: object) -> str:
    text = value.strip().lower().lstrip("@").rstrip(".") if isinstance(value, str) else ""
    if not _DOMAIN.match(text):
        raise ValueError(f"expected an email domain such as 'example.com', got {value!r}")
    return text


def _time_zone(value: str) -> str:
    parse_time_zone(value)
    return value


def _one_or_many(value: object) -> object:
    """Let sales ops write ``qualified_by: demo_request`` as well as a list."""
    return [value] if isinstance(value, str) else value


CountryCode = Annotated[str, BeforeValidator(_country)]
RegionName = Annotated[str, BeforeValidator(_region)]
Territory = Annotated[str, BeforeValidator(_territory)]
Domain = Annotated[str, BeforeValidator(_domain)]
TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
RepId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
"""Opaque; letters, digits and ``._:-`` only, so an email address can never be used as an id."""
ShiftText = Annotated[
    WorkInterval,
    PlainValidator(parse_interval),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["09:00-17:00", "22:00-06:00"]}),
]
Names = Annotated[tuple[str, ...], BeforeValidator(_one_or_many), Field(min_length=1)]

_OFFICE_HOURS = (parse_interval("09:00-17:00"),)
DEFAULT_WORKING_HOURS: dict[Weekday, tuple[WorkInterval, ...]] = {
    day: _OFFICE_HOURS for day in ("mon", "tue", "wed", "thu", "fri")
}


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Capacity(_Config):
    """Caps on new assignments per local day and on leads a rep holds open; unset means no cap."""

    daily: int | None = Field(default=None, ge=0)
    open: int | None = Field(default=None, ge=0)


class OutOfOffice(_Config):
    """An absence from ``start`` (inclusive) to ``end`` (exclusive).

    A datetime without an offset is read on the rep's own clock, as a rep would write it.
    """

    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> OutOfOffice:
        naive = [moment.tzinfo is None for moment in (self.start, self.end)]
        if naive[0] != naive[1]:
            raise ValueError("give both start and end with a UTC offset, or neither")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def covers(self, at: datetime, time_zone: str) -> bool:
        start, end = self.period(time_zone)
        return start <= at < end

    def period(self, time_zone: str) -> tuple[datetime, datetime]:
        """The absence as aware instants; a naive start or end is read in ``time_zone``."""
        zone = parse_time_zone(time_zone)
        start, end = (
            moment if moment.tzinfo else moment.replace(tzinfo=zone)
            for moment in (self.start, self.end)
        )
        return start, end


class Rep(_Config):
    """A sales rep: who they are, what they cover, and when they can take a lead."""

    id: RepId
    name: str = Field(min_length=1)
    role: Role
    team: str = Field(min_length=1)
    email: str | None = Field(default=None, repr=False)
    """For notifications only; kept out of ``repr`` so it never reaches a log line."""
    territories: tuple[Territory, ...] = ()
    """Empty means everywhere."""
    segments: tuple[Segment, ...] = ()
    """Empty means every segment."""
    weight: int = Field(default=1, ge=1, le=1000)
    """Share of round-robin assignments relative to the other eligible reps."""
    capacity: Capacity = Capacity()
    time_zone: TimeZoneName = "UTC"
    working_hours: dict[Weekday, tuple[ShiftText, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_WORKING_HOURS)
    )
    """A weekday left out is a day off. Default: Monday-Friday 09:00-17:00 in ``time_zone``."""
    holidays: tuple[date, ...] = ()
    out_of_office: tuple[OutOfOffice, ...] = ()
    active: bool = True
    manager: str | None = None
    """A rep id or free text; the SLA escalation reads it."""

    @cached_property
    def calendar(self) -> BusinessCalendar:
        """The rep's own working calendar: their shifts on their clock, minus their holidays
        (built once per rep value: every decision screens every rep by it)."""
        return BusinessCalendar.of_week(self.time_zone, self.working_hours, self.holidays)

    @field_validator("working_hours")
    @classmethod
    def _no_overlap(
        cls, value: dict[Weekday, tuple[WorkInterval, ...]]
    ) -> dict[Weekday, tuple[WorkInterval, ...]]:
        for day, shifts in value.items():
            ordered = sorted(shifts)
            for earlier, later in pairwise(ordered):
                if later.start < earlier.end:
                    raise ValueError(f"{day}: {earlier} overlaps {later}")
        return value


class Account(_Config):
    """A known customer or target account; leads from its domains go to its owner."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    domains: tuple[Domain, ...] = Field(min_length=1)
    owner_rep_id: RepId | None = None


class SegmentBand(_Config):
    """Company sizes from ``min`` (inclusive) to ``max`` (exclusive); an open end is unbounded."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> SegmentBand:
        if self.min is not None and self.max is not None and self.max <= self.min:
            raise ValueError(f"max ({self.max}) must be above min ({self.min})")
        return self

    def contains(self, size: int) -> bool:
        return (self.min is None or size >= self.min) and (self.max is None or size < self.max)


DEFAULT_SEGMENTS: dict[Segment, SegmentBand] = {
    "smb": SegmentBand(max=200),
    "mid_market": SegmentBand(min=200, max=1000),
    "enterprise": SegmentBand(min=1000),
}


class RuleWhen(_Config):
    """Conditions of a rule; every condition given must hold, a condition left out holds always."""

    grade_in: Names | None = None
    qualified_by: Names | None = None
    high_intent_actions_any: Names | None = None
    segment_in: Annotated[tuple[Segment, ...], Field(min_length=1)] | None = None
    country_in: Annotated[tuple[CountryCode, ...], Field(min_length=1)] | None = None
    region_in: Annotated[tuple[RegionName, ...], Field(min_length=1)] | None = None


class AssignTo(_Config):
    """The pool a lead goes to: a role, optionally one team of it (any team when left out)."""

    role: Role
    team: str | None = Field(default=None, min_length=1)

    def includes(self, rep: Rep) -> bool:
        """Whether ``rep`` is a member of this pool (the role, and the team when one is named)."""
        return rep.role == self.role and (self.team is None or rep.team == self.team)


class Rule(_Config):
    id: str = Field(min_length=1)
    description: str | None = None
    when: RuleWhen = RuleWhen()
    assign_to: AssignTo


class Fallback(_Config):
    """Where a lead goes when nobody is eligible: a queue, and optionally a rep who watches it."""

    queue: str = Field(default="unassigned-leads", min_length=1)
    owner_rep_id: RepId | None = None
    route_again_every: ElapsedText = timedelta(seconds=30)
    """How often queued leads are routed again, oldest first, so one goes to a rep as soon as
    a rep can take it (capacity freed, shift started, back from out-of-office)."""


class Rejections(_Config):
    """What a rep's rejection of a lead means for routing it again (Distribution Engine's
    "tracked assignees")."""

    exclude_rep_for_episodes: int = Field(default=1, ge=0)
    """A rep who rejected the lead does not get it in this many next sales-ready episodes
    (0: they may get it straight back)."""


FREE_MAIL_DOMAINS: Final = frozenset(
    [
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "yandex.ru",
        "mail.ru",
        "qq.com",
        "163.com",
        "zoho.com",
    ]
)


class AccountMatching(_Config):
    """How leads are matched to accounts beyond their exact email domain (LeanData style)."""

    fuzzy_threshold: float = Field(default=90, ge=0, le=100)
    """The least similarity (0-100) a fuzzy company-name or domain match needs."""
    ambiguity_margin: float = Field(default=3, ge=0, le=100)
    """Fuzzy matches this close to the best one make the match ambiguous."""
    tie_break: Literal["fallback", "rules"] = "fallback"
    """An ambiguous match: ``fallback`` queues the lead for a person, ``rules`` ignores the
    accounts and routes by the rules."""
    free_mail_domains: frozenset[str] = FREE_MAIL_DOMAINS
    """Domains of personal mailboxes: never matched to an account by domain."""

    @field_validator("free_mail_domains")
    @classmethod
    def _lower(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(domain.strip().lower() for domain in value)


class Credit(_Config):
    """When a rep's rotation turn is given back, and the window fairness is measured over."""

    give_back_on_rejection_within: ElapsedText | None = None
    """A lead the rep rejected within this long of getting it gives the turn back (None: no)."""
    give_back_on_reassignment: bool = False
    """A lead taken from the rep by a reassignment (a missed SLA) gives the turn back."""
    fairness_window: ElapsedText = timedelta(days=30)
    """Expected vs actual shares (``GET /v1/reps``, metrics) count the leads of this window."""


class RoutingConfig(_Config):
    """The whole ``routing:`` section."""

    regions: dict[RegionName, Annotated[tuple[CountryCode, ...], Field(min_length=1)]] = {}
    segments: dict[Segment, SegmentBand] = Field(default_factory=lambda: dict(DEFAULT_SEGMENTS))
    rules: tuple[Rule, ...] = ()
    """Tried in order; the first rule whose conditions all hold decides the pool."""
    default: AssignTo = AssignTo(role="sdr")
    fallback: Fallback = Fallback()
    rejections: Rejections = Rejections()
    credit: Credit = Credit()
    account_matching: AccountMatching = AccountMatching()
    respect_working_hours: bool = True
    account_owner_ignores_working_hours: bool = False
    """True: an account's owner gets its leads outside their working hours too."""

    @field_validator("segments")
    @classmethod
    def _bands_disjoint(cls, value: dict[Segment, SegmentBand]) -> dict[Segment, SegmentBand]:
        bands = sorted(value.items(), key=lambda item: item[1].min or 0)
        for (low_name, low), (high_name, high) in pairwise(bands):
            if low.max is None or high.min is None or high.min < low.max:
                raise ValueError(f"{low_name} and {high_name} overlap; sizes must fall in one band")
        return value

    @model_validator(mode="after")
    def _references(self) -> RoutingConfig:
        problems = _duplicates("rules", [rule.id for rule in self.rules], "rule id")
        for index, rule in enumerate(self.rules):
            for name in rule.when.region_in or ():
                if name not in self.regions:
                    problems.append(
                        f"rules[{index}].when.region_in: unknown region {name!r}"
                        f" (known: {', '.join(sorted(self.regions)) or 'none'})"
                    )
        _raise_if(problems)
        return self

    def segment_for(self, company_size: int | None) -> Segment | None:
        """The segment whose band holds the size; None when the size is unknown or in a gap."""
        if company_size is None:
            return None
        for name in SEGMENTS:
            band = self.segments.get(name)
            if band is not None and band.contains(company_size):
                return name
        return None

    def regions_of(self, country: str | None) -> tuple[str, ...]:
        """Every region listing the country (regions may overlap, e.g. ``dach`` inside ``emea``)."""
        return tuple(sorted(name for name, codes in self.regions.items() if country in codes))


class RosterConfig(_Config):
    """The optional ``roster:`` section: reps and accounts (the HTTP API can manage them too)."""

    reps: tuple[Rep, ...] = ()
    accounts: tuple[Account, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> RosterConfig:
        rep_ids = {rep.id for rep in self.reps}
        problems = _duplicates("reps", [rep.id for rep in self.reps], "rep id")
        problems += _duplicates("accounts", [account.id for account in self.accounts], "account id")
        problems += _duplicate_domains(self.accounts)
        for index, account in enumerate(self.accounts):
            if account.owner_rep_id is not None and account.owner_rep_id not in rep_ids:
                problems.append(
                    f"accounts[{index}].owner_rep_id: unknown rep {account.owner_rep_id!r}"
                )
        _raise_if(problems)
        return self


def load_routing(mapping: Mapping[str, Any]) -> RoutingConfig:
    """Validate the body of the ``routing:`` section (raises pydantic ``ValidationError``)."""
    return RoutingConfig.model_validate(mapping)


def load_roster(mapping: Mapping[str, Any], routing: RoutingConfig | None = None) -> RosterConfig:
    """Validate the body of the ``roster:`` section, and its references into ``routing`` if given.

    Raises ``ValueError`` (pydantic's ``ValidationError`` is one) naming each wrong key.
    """
    roster = RosterConfig.model_validate(mapping)
    if routing is not None:
        cross_validate(routing, roster.reps)
    return roster


def cross_validate(routing: RoutingConfig, reps: Sequence[Rep]) -> None:
    """Refuse references from one section into the other that point at nothing.

    Separate from the models because the roster may come from the API rather than the file; the
    definitions loader and the roster API both call it.
    """
    rep_ids = {rep.id for rep in reps}
    problems = []
    owner = routing.fallback.owner_rep_id
    if owner is not None and owner not in rep_ids:
        problems.append(f"routing.fallback.owner_rep_id: unknown rep {owner!r}")
    for index, rep in enumerate(reps):
        problems += [
            f"roster.reps[{index}].territories[{position}]: {message}"
            for position, message in unknown_territories(routing, rep)
        ]
    _raise_if(problems)


def unknown_territories(routing: RoutingConfig, rep: Rep) -> list[tuple[int, str]]:
    """``(position, message)`` for each of the rep's territories that names no known region.

    The roster API reports these against the rep's own fields (``/territories/1``).
    """
    known = ", ".join(sorted(routing.regions)) or "none"
    return [
        (position, f"unknown region {territory!r} (known: {known})")
        for position, territory in enumerate(rep.territories)
        if not _COUNTRY.match(territory) and territory not in routing.regions
    ]


def _duplicates(section: str, ids: Iterable[str], what: str) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for index, value in enumerate(ids):
        if value in seen:
            first = f"{section}[{seen[value]}]"
            problems.append(f"{section}[{index}].id: duplicate {what} {value!r} (first at {first})")
        seen.setdefault(value, index)
    return problems


def _duplicate_domains(accounts: Sequence[Account]) -> list[str]:
    """One domain, one account: otherwise which owner gets the lead would be arbitrary."""
    counts = Counter(domain for account in accounts for domain in set(account.domains))
    return [
        f"accounts[{index}].domains: {domain!r} belongs to more than one account"
        for index, account in enumerate(accounts)
        for domain in account.domains
        if counts[domain] > 1
    ]


def _raise_if(problems: list[str]) -> None:
    if problems:
        raise ValueError("; ".join(problems))
