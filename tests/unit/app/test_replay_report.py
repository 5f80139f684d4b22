"""The comparison of two replay runs (pure): which leads differ, in what, and the figures per rep,
team and SLA policy both teams read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadrelay.app.replay import Assignment, ClockOutcome, SandboxRun, outcome_of
from leadrelay.app.replay_report import compare, differences, render_text
from services.sla_monitor.domain import ClockKind, ClockState, SlaClock
from services.sla_monitor.domain.clocks import BREACH

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ANA = Assignment(1, 1, "sdr-ana", "sdr-amer", "round_robin")
CHLOE = Assignment(1, 1, "sdr-chloe", "sdr-global", "round_robin")


def met(kind: str = "first_touch") -> ClockOutcome:
    return ClockOutcome(1, 1, kind, "sdr", "met")


def breached(kind: str = "first_touch") -> ClockOutcome:
    return ClockOutcome(1, 1, kind, "sdr", "breached")


def run(
    assignments: dict[str, tuple[Assignment, ...]], clocks: dict[str, tuple[ClockOutcome, ...]]
) -> SandboxRun:
    return SandboxRun({}, (), assignments, clocks)


def test_identical_runs_change_nothing() -> None:
    live = run({"lk_a": (ANA,)}, {"lk_a": (met(), met("acceptance"))})

    report = compare(live, live, {})

    assert report["changed"] == 0
    assert report["changed_leads"] == []
    assert report["difference"]["assignments_by_rep"] == {}


def test_another_rep_is_an_assignment_change_counted_per_rep_and_team() -> None:
    live = run({"lk_a": (ANA,), "lk_b": (ANA,)}, {})
    draft = run({"lk_a": (CHLOE,), "lk_b": (ANA,)}, {})

    report = compare(live, draft, {})

    assert report["changed"] == 1
    assert report["changed_by_kind"] == {"assignment": 1}
    [item] = report["changed_leads"]
    assert (item["lead_key"], item["live_reps"], item["draft_reps"]) == (
        "lk_a",
        ["sdr-ana"],
        ["sdr-chloe"],
    )
    assert report["difference"]["assignments_by_rep"] == {"sdr-ana": -1, "sdr-chloe": 1}
    assert report["difference"]["assignments_by_team"] == {"sdr-amer": -1, "sdr-global": 1}
    assert "reps sdr-ana -> sdr-chloe" in render_text(report)


def test_a_met_clock_breached_is_an_sla_change_counted_per_policy() -> None:
    live = run({"lk_a": (ANA,)}, {"lk_a": (met(), met("acceptance"))})
    draft = run({"lk_a": (ANA,)}, {"lk_a": (breached(), met("acceptance"))})

    report = compare(live, draft, {})

    assert differences("lk_a", live, draft) == ["sla"]
    assert report["changed"] == 1
    assert report["difference"]["sla_outcomes"] == {
        "sdr/first_touch/breached": 1,
        "sdr/first_touch/met": -1,
    }
    text = render_text(report)
    assert "SLA first_touch met, acceptance met -> first_touch breached, acceptance met" in text


def test_a_lead_never_assigned_in_the_draft_differs_in_assignment_and_sla() -> None:
    live = run({"lk_a": (ANA,)}, {"lk_a": (met(),)})
    draft = run({}, {})

    assert differences("lk_a", live, draft) == ["assignment", "sla"]
    assert compare(live, draft, {})["difference"]["assignments"] == -1


def test_the_lead_view_shows_both_runs_assignments_and_clocks() -> None:
    live = run({"lk_a": (ANA,)}, {"lk_a": (met(),)})
    draft = run({"lk_a": (CHLOE,)}, {"lk_a": (breached(),)})

    lead = compare(live, draft, {}, lead="lk_a")["lead"]

    assert lead["live"]["assignments"][0]["rep_id"] == "sdr-ana"
    assert lead["draft"]["sla"][0]["outcome"] == "breached"
    assert "episode 1 attempt 1: sdr-chloe (sdr-global, round_robin)" in render_text(
        compare(live, draft, {}, lead="lk_a")
    )


def clock(state: ClockState, *steps: tuple[str, timedelta]) -> SlaClock:
    return SlaClock(
        clock_id="c1", lead_key="lk_a", assignment_id="as1", rep_id="sdr-ana", episode=1,
        attempt=1, kind=ClockKind.FIRST_TOUCH, policy_id="sdr", started_at=AT, warn_at=None,
        due_at=AT + timedelta(hours=1), state=state,
        steps_taken=tuple((label, AT + after) for label, after in steps),
    )  # fmt: skip


IN_TIME, HOUR, LATE = timedelta(minutes=50), timedelta(hours=1), timedelta(minutes=70)


@pytest.mark.parametrize(
    ("made", "outcome"),
    [
        (clock(ClockState.COMPLETED, ("contacted", IN_TIME)), "met"),
        (clock(ClockState.COMPLETED, (BREACH, HOUR), ("contacted", LATE)), "breached"),
        # touched late, before the firing loop woke: a breach all the same
        (clock(ClockState.COMPLETED, ("contacted", LATE)), "breached"),
        (clock(ClockState.BREACHED, (BREACH, HOUR)), "breached"),
        (clock(ClockState.RUNNING), "running"),
        (clock(ClockState.WARNED, ("warn", IN_TIME)), "running"),
        (clock(ClockState.STOPPED, ("rejected", IN_TIME)), "ended"),
        (clock(ClockState.STOPPED, ("rejected", LATE)), "breached"),
    ],
)
def test_a_clock_outcome_is_met_breached_running_or_ended(made: SlaClock, outcome: str) -> None:
    assert outcome_of(made, as_of=AT + IN_TIME) == outcome


def test_a_clock_open_past_its_deadline_is_breached_though_not_yet_fired() -> None:
    assert outcome_of(clock(ClockState.RUNNING), as_of=AT + LATE) == "breached"
    assert outcome_of(clock(ClockState.RUNNING)) == "running"
