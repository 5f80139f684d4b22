"""``leadrelay check-config``: the shipped default passes; each broken file is refused by key."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadrelay.app.cli import main
from leadrelay.app.definitions import default_definitions_text

Document = dict[str, Any]


def default_document() -> Document:
    document: Document = yaml.safe_load(default_definitions_text())
    return document


def run_check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "definitions.yaml"
    path.write_text(text)
    code = main(["check-config", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_shipped_default_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_check(tmp_path, default_definitions_text(), capsys)
    assert code == 0, output
    assert ": ok (" in output


def _set(path: str, value: object) -> Callable[[Document], None]:
    def edit(document: Document) -> None:
        *parents, last = path.split("/")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return edit


def _delete(path: str) -> Callable[[Document], None]:
    def edit(document: Document) -> None:
        *parents, last = path.split("/")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return edit


BROKEN: dict[str, tuple[Callable[[Document], None], str]] = {
    "misspelt top-level section": (_set("scorcard", {}), "scorcard: unknown key"),
    "missing scorecard": (_delete("scorecard"), "scorecard: required key is missing"),
    "fit rule without its field": (
        _delete("scorecard/fit/rules/0/field"),
        "scorecard.fit.rules[0].field: required key is missing",
    ),
    "engagement retention shorter than the half-life": (
        _set("scorecard/engagement/retention", "1d"),
        "scorecard.engagement.retention",
    ),
    "engagement points not a number": (
        _set("scorecard/engagement/rules/0/points", "lots"),
        "scorecard.engagement.rules[0].points",
    ),
    "bad half-life": (
        _set("scorecard/engagement/half_life", "14"),
        "scorecard.engagement.half_life",
    ),
    "grades not descending": (
        _set("scorecard/grades", {"A": 10, "B": 40, "C": 20}),
        "scorecard.grades",
    ),
    "fast track names an unknown rule": (
        _set("scorecard/fast_track/rules", ["demo"]),
        "scorecard.fast_track.rules[0]",
    ),
    "unknown lifecycle stage": (
        _set("lifecycle/stages/hot", "very interested"),
        "lifecycle.stages",
    ),
    "rep with an unknown role": (_set("roster/reps/0/role", "closer"), "roster.reps[0].role"),
    "rep in an unknown time zone": (
        _set("roster/reps/0/time_zone", "Mars/Olympus"),
        "roster.reps[0].time_zone",
    ),
    "routing rule with an unknown region": (
        _set("routing/rules/0/when/region_in", ["emae"]),
        "rules[0].when.region_in: unknown region 'emae'",
    ),
    "SLA deadline without a unit": (
        _set("sla/policies/0/first_touch/within", "1"),
        "sla.policies[0].first_touch.within",
    ),
    "SLA ladder with an unknown action": (
        _set("sla/policies/0/on_breach/0", {"action": "panic"}),
        "sla.policies[0].on_breach[0]",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_file_is_refused_naming_the_key(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edit, expected_key = BROKEN[name]
    document = copy.deepcopy(default_document())
    edit(document)
    code, output = run_check(tmp_path, yaml.safe_dump(document), capsys)
    assert code == 1
    assert expected_key in output, output


def test_invalid_yaml_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run_check(tmp_path, "scorecard:\n  version: [unclosed\n", capsys)
    assert code == 1
    assert "line 3" in output
    assert "not valid YAML" in output


def test_a_missing_file_is_refused_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["check-config", str(tmp_path / "nope.yaml")])
    assert code == 1
    assert "cannot read the file" in capsys.readouterr().err
