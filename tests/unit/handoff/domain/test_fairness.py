"""Weighted round robin as reps experience it: fair shares, strict turns, no catch-up bursts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from services.handoff.domain import (
    Rep,
    RoutingState,
    decide,
    fairness_report,
    give_turn_back,
    largest_deviation,
    pick,
    shares,
)

from ..builders import NOW, make_facts, make_rep, make_routing

ROUTING = make_routing()


def _assign(reps: Sequence[Rep], count: int, state: RoutingState | None = None) -> list[str]:
    state = state or RoutingState()
    chosen = []
    for _ in range(count):
        decision = decide(ROUTING, reps, [], make_facts(), state, {}, NOW)
        assert decision.rep_id is not None
        chosen.append(decision.rep_id)
        state = decision.new_state
    return chosen


def test_ten_thousand_leads_split_by_weight_within_one_percent() -> None:
    reps = [make_rep("w1", weight=1), make_rep("w2", weight=2), make_rep("w3", weight=3)]
    counts = Counter(_assign(reps, 10_000))
    for rep in reps:
        share = counts[rep.id] / 10_000
        assert abs(share - rep.weight / 6) <= 0.01, (rep.id, share)


def test_reps_of_equal_weight_never_differ_by_more_than_one_lead() -> None:
    weights = {"a": 1, "b": 1, "c": 2, "d": 2, "e": 3}
    reps = [make_rep(rep_id, weight=weight) for rep_id, weight in weights.items()]
    counts: Counter[str] = Counter()
    for number, rep_id in enumerate(_assign(reps, 10_000)):
        counts[rep_id] += 1
        assert abs(counts["a"] - counts["b"]) <= 1, number
        assert abs(counts["c"] - counts["d"]) <= 1, number


def test_state_stored_as_json_between_decisions_gives_identical_assignments() -> None:
    reps = [
        make_rep("amer-1", territories=["amer"], weight=2),
        make_rep("emea-1", territories=["emea"]),
        make_rep("global", weight=3),
        make_rep("de-only", territories=["DE"], capacity={"open": 5}),
    ]
    countries = ["US", "DE", "FR", None, "JP", "CA"]
    in_memory, stored = RoutingState(), RoutingState().model_dump_json()
    for number in range(600):
        facts = make_facts(country=countries[number % len(countries)])
        kept = decide(ROUTING, reps, [], facts, in_memory, {}, NOW)
        restored = RoutingState.model_validate_json(stored)
        reloaded = decide(ROUTING, reps, [], facts, restored, {}, NOW)
        assert reloaded == kept
        in_memory, stored = kept.new_state, reloaded.new_state.model_dump_json()


def test_rep_back_from_absence_gets_no_catch_up_burst() -> None:
    away = {"start": NOW.isoformat(), "end": (NOW + timedelta(minutes=300)).isoformat()}
    reps = [make_rep("a"), make_rep("b"), make_rep("c", out_of_office=[away])]
    state = RoutingState()
    chosen = []
    for minute in range(330):
        decision = decide(
            ROUTING, reps, [], make_facts(), state, {}, NOW + timedelta(minutes=minute)
        )
        assert decision.rep_id is not None
        chosen.append(decision.rep_id)
        state = decision.new_state
    assert "c" not in chosen[:300]
    after_return = Counter(chosen[300:])
    assert after_return["c"] <= 11, after_return  # a fair third of 30 is 10


def test_reps_who_left_the_pool_drop_out_of_the_stored_state() -> None:
    reps = [make_rep("a"), make_rep("b"), make_rep("c")]
    first = decide(ROUTING, reps, [], make_facts(), RoutingState(), {}, NOW)
    assert set(first.new_state.pools["sdr:*"]) == {"a", "b", "c"}
    second = decide(ROUTING, reps[:2], [], make_facts(), first.new_state, {}, NOW)
    assert set(second.new_state.pools["sdr:*"]) == {"a", "b"}
    assert second.new_state.version_of("sdr:*") == first.new_state.version_of("sdr:*") + 1


def _nginx_reference(weights: dict[str, int], count: int) -> list[str]:
    """nginx's smooth weighted round robin, written as its docs describe it, without any bound."""
    current = dict.fromkeys(weights, 0)
    chosen = []
    for _ in range(count):
        for rep in current:
            current[rep] += weights[rep]
        best = max(sorted(current), key=lambda rep: current[rep])
        current[best] -= sum(weights.values())
        chosen.append(best)
    return chosen


@given(st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=6))
@example([1, 1, 1, 11, 11, 13])  # a credit reaches 41 > the total 38: a total-weight clamp breaks
def test_fixed_pool_follows_nginx_smooth_round_robin_exactly(weight_list: list[int]) -> None:
    weights = {f"rep-{index}": weight for index, weight in enumerate(weight_list)}
    state = RoutingState()
    chosen = []
    for _ in range(3 * sum(weight_list)):
        rep, state = pick(state, "sdr:*", weights, list(weights))
        chosen.append(rep)
    assert chosen == _nginx_reference(weights, len(chosen))


def test_a_turn_given_back_puts_the_rep_first_in_line_again() -> None:
    reps = [make_rep("a"), make_rep("b"), make_rep("c")]
    state = RoutingState()
    first = decide(ROUTING, reps, [], make_facts(), state, {}, NOW)
    assert first.rep_id == "a"
    members = {rep.id: rep.weight for rep in reps}
    returned = give_turn_back(first.new_state, first.pool or "", "a", members)

    after_return = _assign(reps, 3, returned)
    without = _assign(reps, 3, first.new_state)
    assert (after_return, without) == (["a", "b", "c"], ["b", "c", "a"])
    assert give_turn_back(returned, first.pool or "", "gone", members) == returned


def test_shares_compare_each_reps_actual_share_with_their_weight() -> None:
    pool = shares("sdr:*", {"a": 1, "b": 3}, {"a": 3, "b": 5, "left-the-pool": 9})

    assert [(s.rep_id, s.expected, s.actual) for s in pool] == [
        ("a", 0.25, 0.375),
        ("b", 0.75, 0.625),
    ]
    assert largest_deviation(pool) == 0.125
    assert [s.actual for s in shares("sdr:*", {"a": 1}, {})] == [0.0]  # no leads yet


def test_the_fairness_report_covers_every_pool_routing_rotates_in() -> None:
    routing = make_routing(
        rules=[{"id": "enterprise", "when": {"segment_in": ["enterprise"]},
                "assign_to": {"role": "ae", "team": "ent"}}],
    )  # fmt: skip
    reps = [make_rep("s1"), make_rep("ae1", role="ae", team="ent"),
            make_rep("ae2", role="ae", team="mid"), make_rep("off", active=False)]  # fmt: skip

    report = fairness_report(routing, reps, {"ae:ent": {"ae1": 2}})

    assert [(p.pool, [s.rep_id for s in p.shares]) for p in report] == [
        ("ae:ent", ["ae1"]),
        ("sdr:*", ["s1"]),
    ]
    assert report[0].shares[0].actual == 1.0
