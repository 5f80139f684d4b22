"""Calibration statistics: Wilson and Newcombe intervals, a planted effect recovered, outcomes
read from stage histories, the threshold that maximises the stated objective."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from services.scoring.domain import LeadState, Stage, StageChange
from services.scoring.domain.calibration import (
    Episode,
    Outcome,
    best_threshold,
    difference_interval,
    outcomes_by_episode,
    proposed_points,
    rule_lifts,
    wilson,
)
from tests.unit.scoring.helpers import T0

SQL, NOT_SQL = Outcome(accepted=True, sql=True), Outcome(rejected_reason="no budget")


def test_wilson_matches_the_published_values() -> None:
    interval = wilson(5, 10)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.2366, 0.7634)
    assert round(wilson(0, 10).high, 4) == 0.2775
    assert wilson(0, 0).low == 0.0
    assert wilson(0, 0).high == 1.0


def test_newcombes_interval_matches_the_published_example() -> None:
    # Newcombe (1998), table II, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339
    interval = difference_interval(56, 70, 48, 80)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.0524, 0.3339)


def planted(seed: int = 11, n: int = 400) -> list[Episode]:
    """``signal`` lifts the SQL rate from 20% to 60%; ``noise`` fires at random and does not."""
    rng, episodes = random.Random(seed), []
    for i in range(n):
        signal, noise = rng.random() < 0.5, rng.random() < 0.5
        points = {"signal": 10.0} | ({"noise": 5.0} if noise else {})
        if not signal:
            del points["signal"]
        converted = rng.random() < (0.6 if signal else 0.2)
        outcome = SQL if converted else NOT_SQL
        episodes.append(Episode(f"k{i}", 1, points, 55.0, "thresholds", outcome))
    return episodes


def test_a_rule_that_predicts_sql_gets_positive_lift_and_a_noise_rule_none() -> None:
    lifts = {lift.rule: lift for lift in rule_lifts(planted())}

    signal, noise = lifts["signal"], lifts["noise"]
    assert signal.verdict == "predicts SQL"
    assert signal.difference_interval.low > 0.25  # planted: +0.40
    assert signal.difference_interval.contains(0.40)
    assert noise.verdict == "no evidence"
    assert noise.difference_interval.contains(0.0)
    assert proposed_points(10.0, signal) == 20.0  # rate ratio ~3, bounded to doubling
    assert proposed_points(5.0, noise) == 5.0
    assert sum(noise.rejection_reasons.values()) == noise.with_n - noise.with_sql


def test_hand_offs_nobody_reported_on_do_not_count() -> None:
    silent = [Episode("s", 1, {"noise": 1.0}, 55.0, "thresholds", Outcome())] * 50
    lifts = {lift.rule: lift for lift in rule_lifts([*planted(), *silent])}
    assert (
        lifts["noise"].with_n == {lift.rule: lift for lift in rule_lifts(planted())}["noise"].with_n
    )


def test_the_threshold_rises_to_where_the_unproductive_hand_offs_stop() -> None:
    low = [Episode(f"l{i}", 1, {}, 52.0, "thresholds", NOT_SQL if i % 4 else SQL)
           for i in range(40)]  # fmt: skip
    high = [Episode(f"h{i}", 1, {}, 70.0, "thresholds", SQL if i % 2 else NOT_SQL)
            for i in range(20)]  # fmt: skip
    fast = [Episode(f"f{i}", 1, {}, 10.0, "fast_track", NOT_SQL) for i in range(30)]

    choice = best_threshold([*low, *high, *fast], current=50.0, sql_value=1.0)

    # at 50: 10 + 10 SQLs of 60 -> 20 - 40 = -20; at 70: 10 of 20 -> 10 - 10 = 0
    assert (choice.threshold, choice.kept, choice.sql, choice.objective) == (70.0, 20, 10, 0.0)
    assert (choice.current_kept, choice.current_sql) == (60, 20)
    generous = best_threshold([*low, *high], current=50.0, sql_value=4.0)
    assert generous.threshold == 50.0  # 4 * 20 - 40 = 40 beats 4 * 10 - 10 = 30


def change(to: Stage, hours: float, rule: str, note: str | None = None) -> StageChange:
    return StageChange(Stage.LEAD, to, T0 + timedelta(hours=hours), f"e{hours}", rule, note)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ([change(Stage.SAL, 1, "sales_outcome:accepted"),
          change(Stage.SQL, 2, "sales_outcome:qualified")], Outcome(accepted=True, sql=True)),
        ([change(Stage.RECYCLED, 1, "sales_outcome:rejected", "no budget")],
         Outcome(rejected_reason="no budget")),
        ([change(Stage.CUSTOMER, 1, "sales_outcome:won")],
         Outcome(accepted=True, sql=True, won=True)),
        ([change(Stage.RECYCLED, 1, "recycle:sla_breached")], Outcome()),
    ],
)  # fmt: skip
def test_outcomes_are_read_from_the_stage_history_per_episode(
    changes: list[StageChange], expected: Outcome
) -> None:
    mql = change(Stage.MQL, 0, "sales_ready")
    second = change(Stage.MQL, 10, "sales_ready")
    state = LeadState("k", history=(mql, *changes, second))
    assert outcomes_by_episode(state) == {1: expected, 2: Outcome()}
