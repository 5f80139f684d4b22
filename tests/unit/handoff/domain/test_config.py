"""The routing and roster sections: what sales ops can write, and the mistakes they are told."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from leadrelay.calendar import is_working
from services.handoff.domain import (
    DEFAULT_ROUTING_FILE,
    RoutingConfig,
    load_roster,
    load_routing,
)

from ..builders import NOW, make_rep, make_routing


def _default_sections() -> dict[str, Any]:
    document = yaml.safe_load(DEFAULT_ROUTING_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_the_shipped_file_loads_and_its_references_hold() -> None:
    document = _default_sections()
    routing = load_routing(document["routing"])
    roster = load_roster(document["roster"], routing)

    assert set(routing.regions) >= {"amer", "emea", "apac"}
    assert "NO" in routing.regions["emea"]  # quoted Norway survives YAML
    sdr_weights = sorted(rep.weight for rep in roster.reps if rep.role == "sdr")
    assert sdr_weights == [1, 2, 3]
    (account,) = roster.accounts
    owner = next(rep for rep in roster.reps if rep.id == account.owner_rep_id)
    assert account.domains == ("example-customer.com",)
    assert owner.role == "ae"


def test_demo_reps_work_at_any_hour_so_a_laptop_demo_always_assigns() -> None:
    roster = load_roster(_default_sections()["roster"])
    for hours in range(0, 7 * 24, 5):
        moment = NOW + timedelta(hours=hours, minutes=17)
        assert all(is_working(rep.calendar, moment) for rep in roster.reps), moment


def test_misspelt_key_is_refused_at_its_location() -> None:
    mapping = {"reps": [{"id": "a", "name": "A", "role": "sdr", "team": "t", "territores": []}]}
    with pytest.raises(ValidationError) as caught:
        load_roster(mapping)
    (error,) = caught.value.errors()
    assert error["loc"] == ("reps", 0, "territores")
    assert error["type"] == "extra_forbidden"


def test_rule_naming_an_unknown_region_is_refused_with_its_key() -> None:
    rules = [
        {"id": "ok", "when": {"region_in": ["emea"]}, "assign_to": {"role": "sdr"}},
        {"id": "typo", "when": {"region_in": ["emae"]}, "assign_to": {"role": "ae"}},
    ]
    with pytest.raises(
        ValidationError, match=r"rules\[1\]\.when\.region_in: unknown region 'emae'"
    ):
        make_routing(rules=rules)


def test_duplicate_rule_ids_are_refused() -> None:
    rule = {"id": "same", "assign_to": {"role": "sdr"}}
    with pytest.raises(ValidationError, match=r"rules\[1\]\.id: duplicate rule id 'same'"):
        make_routing(rules=[rule, rule])


@pytest.mark.parametrize(
    ("roster", "message"),
    [
        (
            {"reps": [_rep := {"id": "a", "name": "A", "role": "sdr", "team": "t"}, _rep]},
            r"reps\[1\]\.id: duplicate rep id 'a' \(first at reps\[0\]\)",
        ),
        (
            {"accounts": [{"id": "x", "name": "X", "domains": ["x.com"]}] * 2},
            r"accounts\[1\]\.id: duplicate account id 'x'",
        ),
        (
            {
                "accounts": [
                    {"id": "x", "name": "X", "domains": ["x.com"]},
                    {"id": "y", "name": "Y", "domains": ["X.com"]},
                ]
            },
            r"accounts\[1\]\.domains: 'x.com' belongs to more than one account",
        ),
        (
            {"accounts": [{"id": "x", "name": "X", "domains": ["x.com"], "owner_rep_id": "ghost"}]},
            r"accounts\[0\]\.owner_rep_id: unknown rep 'ghost'",
        ),
    ],
    ids=["rep-id", "account-id", "domain", "account-owner"],
)
def test_roster_references_are_checked(roster: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_roster(roster)


def test_roster_is_checked_against_routing() -> None:
    routing = make_routing(fallback={"queue": "q", "owner_rep_id": "ghost"})
    roster = {
        "reps": [{"id": "a", "name": "A", "role": "sdr", "team": "t", "territories": ["latam"]}]
    }
    with pytest.raises(
        ValueError, match=r"routing\.fallback\.owner_rep_id: unknown rep 'ghost'"
    ) as e:
        load_roster(roster, routing)
    assert "roster.reps[0].territories[0]: unknown region 'latam'" in str(e.value)


def test_territories_normalise_to_country_codes_and_region_names() -> None:
    rep = make_rep("a", territories=["de", "EMEA", " us "])
    assert rep.territories == ("DE", "emea", "US")


def test_bare_yaml_no_for_norway_gets_a_hint() -> None:
    regions = yaml.safe_load("emea: [SE, NO]")
    with pytest.raises(ValidationError, match="write it in quotes, 'NO'"):
        make_routing(regions=regions)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"working_hours": {"mon": ["9-17"]}}, "expected 'HH:MM-HH:MM'"),
        ({"working_hours": {"mon": ["24:00-02:00"]}}, "is not a time"),
        ({"working_hours": {"mon": ["09:00-13:00", "12:00-17:00"]}}, "overlaps"),
        ({"working_hours": {"monday": ["09:00-17:00"]}}, "mon"),
        ({"id": "ana@example.com"}, "pattern"),
        ({"weight": 0}, "greater than or equal to 1"),
        ({"segments": ["huge"]}, "smb"),
        ({"out_of_office": [{"start": "2025-06-02T00:00", "end": "2025-06-01T00:00"}]}, "after"),
    ],
)
def test_bad_rep_fields_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_rep("a", **fields)


def test_rep_defaults_to_office_hours_monday_to_friday() -> None:
    (rep,) = load_roster({"reps": [{"id": "a", "name": "A", "role": "sdr", "team": "t"}]}).reps
    assert sorted(rep.working_hours) == ["fri", "mon", "thu", "tue", "wed"]
    assert [str(shift) for shift in rep.working_hours["mon"]] == ["09:00-17:00"]


def test_shifts_read_as_the_sla_calendars_do() -> None:
    """One grammar for both: a one-digit hour is accepted, an end equal to the start is a day."""
    rep = make_rep("a", working_hours={"mon": ["9:00-17:00"], "tue": ["06:00-06:00"]})
    dumped = rep.model_dump(mode="json")["working_hours"]
    assert dumped == {"mon": ["09:00-17:00"], "tue": ["06:00-06:00"]}
    assert rep.working_hours["tue"][0].end - rep.working_hours["tue"][0].start == 24 * 60


def test_shift_crossing_midnight_round_trips_as_written() -> None:
    rep = make_rep("a", working_hours={"mon": ["22:00-06:00"], "tue": ["00:00-24:00"]})
    dumped = rep.model_dump(mode="json")["working_hours"]
    assert dumped == {"mon": ["22:00-06:00"], "tue": ["00:00-24:00"]}


def test_rep_email_never_shows_in_repr() -> None:
    rep = make_rep("a", email="ana@example.com")
    assert "ana@example.com" not in repr(rep)
    assert "ana@example.com" not in str(rep)


def test_config_is_frozen() -> None:
    rep = make_rep("a")
    with pytest.raises(ValidationError):
        rep.weight = 5  # type: ignore[misc]


def test_overlapping_segment_bands_are_refused() -> None:
    with pytest.raises(ValidationError, match="overlap"):
        make_routing(segments={"smb": {"max": 300}, "mid_market": {"min": 200, "max": 1000}})


@pytest.mark.parametrize(
    ("size", "segment"),
    [
        (None, None),
        (1, "smb"),
        (199, "smb"),
        (200, "mid_market"),
        (999, "mid_market"),
        (1000, "enterprise"),
        (250_000, "enterprise"),
    ],
)
def test_segment_bands_include_min_and_exclude_max(size: int | None, segment: str | None) -> None:
    assert RoutingConfig().segment_for(size) == segment
