"""The ``sla:`` section: warn rules, located validation errors, the shipped defaults."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from services.sla_monitor.domain import (
    ReassignStep,
    SlaConfig,
    load_sla,
    parse_warn_rule,
)

from ..helpers import default_sla_section


def minimal_section(**policy: Any) -> dict[str, Any]:
    return {
        "calendars": {"default": {"time_zone": "Europe/Berlin"}},
        "policies": [{"id": "default", "first_touch": {"within": "1bh"}, **policy}],
    }


def error_locations(section: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        load_sla(section)
    return [(tuple(error["loc"]), error["msg"]) for error in caught.value.errors()]


class TestWarnRules:
    @pytest.mark.parametrize(
        ("text", "shown"), [("75%", "75%"), ("15bm before", "15bm before"), ("15bm", "15bm before")]
    )
    def test_warn_rules(self, text: str, shown: str) -> None:
        assert str(parse_warn_rule(text)) == shown

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("0%", "between 1 and 99"),
            ("100%", "between 1 and 99"),
            ("1bd before", "business days have no fixed length"),
            ("soon", "invalid duration"),
            (0.75, "expected e.g. '75%'"),
        ],
    )
    def test_invalid_warn_rules(self, text: object, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            parse_warn_rule(text)


class TestValidationErrorsNameTheKey:
    def test_misspelt_key(self) -> None:
        section = minimal_section(first_touch={"wihtin": "1bh"})
        assert (("policies", 0, "first_touch", "within"), "Field required") in error_locations(
            section
        )
        assert any(loc[-1] == "wihtin" for loc, _msg in error_locations(section))

    def test_bad_duration(self) -> None:
        [(loc, msg)] = error_locations(minimal_section(first_touch={"within": "1 hour"}))
        assert loc == ("policies", 0, "first_touch", "within")
        assert "invalid duration '1 hour'" in msg

    def test_unknown_time_zone(self) -> None:
        section = minimal_section()
        section["calendars"]["default"]["time_zone"] = "Europe/Berlinn"
        [(loc, msg)] = error_locations(section)
        assert loc == ("calendars", "default", "time_zone")
        assert "IANA" in msg

    @pytest.mark.parametrize(
        ("hours", "message"),
        [
            ({"mon": ["09:00-25:00"]}, "25:00 is not a time"),
            ({"mon": ["9 to 5"]}, "expected 'HH:MM-HH:MM'"),
            ({"mon": ["09:00-13:00", "12:00-17:00"]}, "overlap"),
            ({"mon": ["20:00-10:00"], "tue": ["09:00-17:00"]}, "runs into the next day"),
            ({"monday": ["09:00-17:00"], "funday": ["09:00-17:00"]}, "unknown day 'funday'"),
            ({"mon": ["09:00-12:00"], "Monday": ["13:00-17:00"]}, "mon is listed twice"),
            ({"sat": []}, "no working hours"),
            ({"mon": "09:00-17:00"}, "valid tuple"),
        ],
    )
    def test_bad_weekly_hours(self, hours: dict[str, Any], message: str) -> None:
        section = minimal_section()
        section["calendars"]["default"]["weekly_hours"] = hours
        [(loc, msg)] = error_locations(section)
        assert loc[:3] == ("calendars", "default", "weekly_hours")
        assert message in msg

    def test_unknown_ladder_action(self) -> None:
        [(loc, msg)] = error_locations(minimal_section(on_breach=[{"action": "panic"}]))
        assert loc[:3] == ("policies", 0, "on_breach")
        assert "escalate" in msg

    def test_recycle_reason_on_breach_is_sla_breached(self) -> None:
        [(loc, _msg)] = error_locations(
            minimal_section(on_breach=[{"action": "recycle", "reason": "lost"}])
        )
        assert loc == ("policies", 0, "on_breach", 0, "recycle", "reason")

    @pytest.mark.parametrize(
        ("policy", "where", "message"),
        [
            (
                {"on_breach": [{"action": "recycle"}, {"action": "escalate"}]},
                (),
                "must be the last",
            ),
            (
                {"on_breach": [{"action": "reassign", "max": 1}, {"action": "reassign", "max": 2}]},
                (),
                "at most one reassign",
            ),
            ({"first_touch": None}, (), "needs first_touch, acceptance or both"),
            ({"applies_to": {"role": "sdr"}}, (), "default policy applies to everything"),
            (
                {"first_touch": {"within": "1bh", "warn_at": "15m before"}},
                ("first_touch",),
                "same kind",
            ),
            (
                {"first_touch": {"within": "1bh", "warn_at": "2bh before"}},
                ("first_touch",),
                "shorter than",
            ),
        ],
    )
    def test_incoherent_policy(
        self, policy: dict[str, Any], where: tuple[str, ...], message: str
    ) -> None:
        [(loc, msg)] = error_locations(minimal_section(**policy))
        assert loc == ("policies", 0, *where)
        assert message in msg

    def test_unknown_role(self) -> None:
        section = minimal_section()
        section["policies"].insert(
            0, {"id": "x", "applies_to": {"role": "cso"}, "first_touch": {"within": "1bh"}}
        )
        [(loc, _msg)] = error_locations(section)
        assert loc == ("policies", 0, "applies_to", "role")

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (lambda s: s["calendars"].update(emea=s["calendars"].pop("default")), "'default'"),
            (lambda s: s["policies"][0].update(id="sdr"), "id 'default' is required"),
            (lambda s: s["policies"].append(copy.deepcopy(s["policies"][0])), "duplicate id"),
            (lambda s: s["policies"][0].update(calendar="apac"), "'apac'"),
        ],
    )
    def test_section_level_rules(self, change: Any, message: str) -> None:
        section = minimal_section()
        change(section)
        [(loc, msg)] = error_locations(section)
        assert loc == ()
        assert message in msg


class TestDefaults:
    def test_shipped_section_is_valid(self) -> None:
        config = load_sla(default_sla_section())
        assert [policy.id for policy in config.policies] == ["sdr", "ae", "default"]

    def test_sdr_policy(self) -> None:
        sdr = load_sla(default_sla_section()).policy_for("sdr", "round_robin")
        assert sdr.id == "sdr"
        assert sdr.first_touch is not None
        assert str(sdr.first_touch.within) == "1bh"
        assert str(sdr.first_touch.warn_at) == "75%"
        assert sdr.acceptance is not None
        assert str(sdr.acceptance.within) == "1bd"
        assert [step.action for step in sdr.on_breach] == ["escalate", "reassign", "recycle"]
        reassign = sdr.on_breach[1]
        assert isinstance(reassign, ReassignStep)
        assert reassign.max == 2

    def test_ae_policy(self) -> None:
        ae = load_sla(default_sla_section()).policy_for("ae", "account", "enterprise")
        assert ae.id == "ae"
        assert ae.first_touch is not None
        assert ae.acceptance is not None
        assert (str(ae.first_touch.within), str(ae.acceptance.within)) == ("4bh", "2bd")

    def test_first_matching_policy_wins_and_default_catches_the_rest(self) -> None:
        section = minimal_section()
        section["policies"] = [
            {
                "id": "enterprise-sdr",
                "applies_to": {"role": "sdr", "team": "enterprise"},
                "first_touch": {"within": "30bm"},
            },
            {"id": "sdr", "applies_to": {"role": "sdr"}, "first_touch": {"within": "1bh"}},
            *section["policies"],
        ]
        config = load_sla(section)
        assert config.policy_for("sdr", "rule", "enterprise").id == "enterprise-sdr"
        assert config.policy_for("sdr", "rule", "smb").id == "sdr"
        assert config.policy_for("ae", "rule", "enterprise").id == "default"

    def test_config_is_frozen_and_round_trips(self) -> None:
        config = load_sla(default_sla_section())
        with pytest.raises(ValidationError):
            config.policies[0].id = "changed"  # type: ignore[misc]
        assert SlaConfig.model_validate(config.model_dump(mode="json")) == config
