"""Lifecycle: when a lead becomes sales-ready, once per episode, and what sales does with it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest

from services.scoring.domain import (
    Activity,
    Decision,
    Holding,
    InvalidTransition,
    LeadState,
    Profile,
    Scorecard,
    ScoringError,
    Stage,
    StageChange,
    UnknownOutcome,
    apply_activity,
    apply_assignment,
    apply_form_submission,
    apply_profile,
    apply_recycle,
    apply_sales_outcome,
    dump_score,
    load_state,
    merge_visitor,
    reassess,
    score_lead,
    state_json,
)
from services.scoring.domain.config import RecycleCooldown

from ..helpers import GRADE_B, GRADE_C, GRADE_D, act, at, card, known_lead

CARD = card()


def run(
    state: LeadState,
    *activities: Activity,
    now: datetime | None = None,
    scorecard: Scorecard = CARD,
) -> Decision:
    """Apply activities in order, each at its own time unless ``now`` is given."""
    decision = None
    for activity in activities:
        decision = apply_activity(scorecard, state, activity, now or activity.occurred_at)
        state = decision.state
    assert decision is not None
    return decision


def qualified(profile: Profile = GRADE_B) -> LeadState:
    """A lead that became sales-ready on day 0 (episode 1) via thresholds."""
    decision = run(
        known_lead(profile),
        act("p1", "pricing_page_view", at()),
        act("p2", "pricing_page_view", at()),
        act("v1", "page_view", at()),
    )
    assert decision.state.stage is Stage.MQL
    return decision.state


# --- anonymous -> lead --------------------------------------------------------------------


def test_a_visitor_stays_anonymous_until_an_email_is_known() -> None:
    visitor = run(LeadState("anon_1"), act("v1", "page_view", at())).state
    assert visitor.stage is Stage.ANONYMOUS
    lead = apply_profile(visitor, Profile(email="ann@acme.example"), "f1", at(1))
    assert lead.stage is Stage.LEAD
    assert lead.history == (StageChange(Stage.ANONYMOUS, Stage.LEAD, at(1), "f1", "identified"),)


def test_an_anonymous_visitor_never_becomes_sales_ready() -> None:
    hot = [act(f"p{i}", "pricing_page_view", at()) for i in range(5)]
    decision = run(LeadState("anon_1", profile=replace(GRADE_B, email=None)), *hot)
    assert decision.score.engagement == 100
    assert (decision.state.stage, decision.became_sales_ready) == (Stage.ANONYMOUS, False)


# --- lead -> mql --------------------------------------------------------------------------


def test_fit_and_engagement_thresholds_make_a_lead_sales_ready() -> None:
    lead = known_lead(GRADE_B)
    almost = run(lead, act("p1", "pricing_page_view", at()), act("p2", "pricing_page_view", at()))
    assert (almost.state.stage, almost.became_sales_ready) == (Stage.LEAD, False)

    decision = apply_activity(CARD, almost.state, act("v1", "page_view", at()), at())
    assert decision.became_sales_ready
    assert decision.qualified_by == "thresholds"
    assert (decision.state.stage, decision.state.episode) == (Stage.MQL, 1)
    [change] = decision.stage_changes
    assert (change.from_stage, change.to_stage, change.cause_event_id, change.rule) == (
        Stage.LEAD,
        Stage.MQL,
        "v1",
        "sales_ready",
    )
    assert change.note == "grade B (min B), engagement 50 (min 50)"
    assert decision.score.version == "test-1"


def test_engagement_just_below_the_threshold_does_not_qualify() -> None:
    """Decay matters: the same three actions spread over a day fall short of 50."""
    decision = run(
        known_lead(GRADE_B),
        act("p1", "pricing_page_view", at()),
        act("p2", "pricing_page_view", at()),
        act("v1", "page_view", at(1)),
    )
    assert decision.score.engagement == 46.23  # 40 * 0.5 ** (1 / 7) + 10
    assert not decision.became_sales_ready


def test_engagement_without_the_fit_grade_does_not_qualify() -> None:
    hot = [act(f"p{i}", "pricing_page_view", at()) for i in range(5)]
    decision = run(known_lead(GRADE_C), *hot)
    assert (decision.score.grade, decision.score.engagement) == ("C", 100)
    assert decision.state.stage is Stage.LEAD


def test_fast_track_qualifies_at_once_with_minimum_fit() -> None:
    decision = run(known_lead(GRADE_C), act("d1", "demo_request", at()))
    assert decision.became_sales_ready
    assert decision.qualified_by == "fast_track"
    assert decision.score.engagement == 5
    assert decision.stage_changes[0].rule == "fast_track:demo_request"


def test_fast_track_needs_its_minimum_grade() -> None:
    decision = run(known_lead(GRADE_D), act("d1", "demo_request", at()))
    assert (decision.state.stage, decision.became_sales_ready) == (Stage.LEAD, False)


def test_sales_ready_fires_once_per_episode() -> None:
    mql = qualified()
    more = run(mql, act("d1", "demo_request", at(1)), act("p3", "pricing_page_view", at(1)))
    assert not more.became_sales_ready
    assert more.stage_changes == ()
    assert (more.state.stage, more.state.episode, len(more.state.history)) == (Stage.MQL, 1, 1)


# --- idempotence and ordering -------------------------------------------------------------


def test_redelivered_activity_changes_nothing() -> None:
    first = apply_activity(CARD, known_lead(GRADE_C), act("d1", "demo_request", at()), at())
    again = apply_activity(CARD, first.state, act("d1", "demo_request", at()), at())
    assert again.state is first.state
    assert (again.became_sales_ready, again.qualified_by, again.stage_changes) == (False, None, ())
    assert again.score == first.score


def test_out_of_order_arrival_gives_the_same_state_and_score() -> None:
    activities = [
        act("v1", "page_view", at(0)),
        act("p1", "pricing_page_view", at(1)),
        act("u1", "unsubscribe", at(2)),
        act("v2", "page_view", at(3)),
    ]
    now = at(4)
    in_order = run(known_lead(GRADE_C), *activities, now=now)
    shuffled = run(known_lead(GRADE_C), *reversed(activities), now=now)
    assert shuffled.state == in_order.state
    assert shuffled.score == in_order.score
    assert [a.event_id for a in shuffled.state.activities] == ["v1", "p1", "u1", "v2"]


# --- visitor merge and form submissions ---------------------------------------------------


def test_anonymous_activity_becomes_the_leads_at_its_original_time() -> None:
    visitor = [act("a1", "pricing_page_view", at(0)), act("a2", "page_view", at(7))]
    lead = known_lead(GRADE_C)
    merged = merge_visitor(lead, visitor, "anon_9")
    assert merged.activities == tuple(visitor)
    assert merged.anonymous_ids == ("anon_9",)
    # 20 points 14 days old + 10 points 7 days old: 5 + 5
    assert score_lead(CARD, merged, at(14)).engagement == 10
    assert merge_visitor(merged, visitor, "anon_9") is merged
    with_dupe = merge_visitor(merged, [*visitor, act("a3", "page_view", at(8))], "anon_9")
    assert [a.event_id for a in with_dupe.activities] == ["a1", "a2", "a3"]


def test_a_visitor_who_fills_a_form_counts_its_earlier_browsing() -> None:
    anonymous = [
        act("a1", "pricing_page_view", at(hours=1)),
        act("a2", "pricing_page_view", at(hours=2)),
        act("a3", "page_view", at(hours=2)),
        act("a4", "page_view", at(hours=3)),
    ]
    state = merge_visitor(LeadState("lk_1"), anonymous, "anon_1")
    form = act("f1", "form_submitted", at(hours=3), form_id="contact-us")
    decision = apply_form_submission(CARD, state, GRADE_B, form, at(hours=3))
    assert decision.became_sales_ready
    assert [(c.from_stage, c.to_stage, c.cause_event_id) for c in decision.stage_changes] == [
        (Stage.ANONYMOUS, Stage.LEAD, "f1"),
        (Stage.LEAD, Stage.MQL, "f1"),
    ]
    assert decision.state.profile.company_size == 150
    again = apply_form_submission(CARD, decision.state, GRADE_B, form, at(hours=4))
    assert again.state is decision.state


def test_reassess_after_a_late_merge() -> None:
    lead = known_lead(GRADE_B)
    merged = merge_visitor(lead, [act(f"a{i}", "pricing_page_view", at()) for i in range(3)], "x")
    decision = reassess(CARD, merged, at(), "merge-1")
    assert decision.qualified_by == "thresholds"
    assert decision.stage_changes[0].cause_event_id == "merge-1"


def test_profile_updates_merge_and_a_late_older_update_only_fills_gaps() -> None:
    lead = apply_profile(
        LeadState("lk_1"),
        Profile(email="ann@acme.example", job_title="Manager", extra={"plan": "pro"}),
        "f1",
        at(2),
    )
    newer = apply_profile(lead, Profile(job_title="VP Marketing", company=" "), "f2", at(3))
    older = apply_profile(
        newer,
        Profile(email="other@x.example", job_title="Intern", country="US", extra={"plan": "free"}),
        "f0",
        at(1),
    )
    assert older.profile == Profile(
        email="ann@acme.example", job_title="VP Marketing", country="US", extra={"plan": "pro"}
    )
    assert older.profile_updated_at == at(3)
    assert [c.cause_event_id for c in older.history] == ["f1"]


# --- recycle guard ------------------------------------------------------------------------


def recycled(profile: Profile = GRADE_B) -> LeadState:
    """Qualified on day 0 (episode 1), recycled on day 1 for a missed SLA."""
    mql = (
        qualified()
        if profile == GRADE_B
        else replace(known_lead(profile), stage=Stage.MQL, episode=1)
    )
    state = apply_recycle(mql, "sla_breached", at(1), "r1")
    assert (state.stage, state.recycled_at, state.recycle_reason) == (
        Stage.RECYCLED,
        at(1),
        "sla_breached",
    )
    return state


def test_old_engagement_does_not_requalify_a_recycled_lead() -> None:
    late_but_old = act("p9", "pricing_page_view", at(hours=20))
    decision = apply_activity(CARD, recycled(), late_but_old, at(1, hours=1))
    assert decision.score.engagement > 50
    assert decision.score.qualifying_engagement == 0
    assert (decision.state.stage, decision.became_sales_ready) == (Stage.RECYCLED, False)


def test_fresh_engagement_after_the_recycle_requalifies_for_a_new_episode() -> None:
    state = recycled()
    not_enough = run(state, act("n1", "pricing_page_view", at(2)), act("n2", "page_view", at(2)))
    assert not_enough.score.qualifying_engagement == 30
    assert not_enough.state.stage is Stage.RECYCLED
    decision = run(not_enough.state, act("n3", "pricing_page_view", at(2)))
    assert decision.became_sales_ready
    assert (decision.state.stage, decision.state.episode) == (Stage.MQL, 2)
    assert [(c.to_stage, c.cause_event_id, c.rule) for c in decision.state.history] == [
        (Stage.MQL, "v1", "sales_ready"),
        (Stage.RECYCLED, "r1", "recycle:sla_breached"),
        (Stage.MQL, "n3", "sales_ready"),
    ]


def test_a_fast_track_action_must_happen_after_the_recycle() -> None:
    state = recycled(GRADE_C)
    old_demo = apply_activity(CARD, state, act("d0", "demo_request", at(hours=12)), at(2))
    assert old_demo.state.stage is Stage.RECYCLED
    new_demo = apply_activity(CARD, old_demo.state, act("d1", "demo_request", at(2)), at(2))
    assert (new_demo.qualified_by, new_demo.state.episode) == ("fast_track", 2)


COOLDOWN = RecycleCooldown.model_validate({"duration": "14d", "unless": ["demo_request"]})


def test_within_the_cooldown_fresh_engagement_does_not_requalify() -> None:
    fresh = [act("n1", "pricing_page_view", at(2)), act("n2", "pricing_page_view", at(2)),
             act("n3", "page_view", at(2))]  # fmt: skip
    state = recycled()
    for activity in fresh:
        decision = apply_activity(CARD, state, activity, at(2), cooldown=COOLDOWN)
        state = decision.state
    assert decision.score.qualifying_engagement >= 50  # enough, were it not for the cooldown
    assert (decision.state.stage, decision.became_sales_ready) == (Stage.RECYCLED, False)


def test_after_the_cooldown_fresh_engagement_requalifies() -> None:
    state = recycled()
    for event_id in ("n1", "n2", "n3"):
        action = "page_view" if event_id == "n3" else "pricing_page_view"
        activity = act(event_id, action, at(15, hours=1))
        state = apply_activity(CARD, state, activity, at(15, hours=1), cooldown=COOLDOWN).state
    assert (state.stage, state.episode) == (Stage.MQL, 2)


def test_a_named_high_intent_action_requalifies_within_the_cooldown() -> None:
    demo = act("d1", "demo_request", at(1, hours=0.1))  # five minutes after the rejection
    decision = apply_activity(CARD, recycled(GRADE_C), demo, at(1, hours=0.1), cooldown=COOLDOWN)
    assert (decision.qualified_by, decision.state.episode) == ("fast_track", 2)


def test_a_fast_track_action_not_named_in_the_cooldown_waits_for_it() -> None:
    strict = RecycleCooldown.model_validate({"duration": "14d"})
    demo = act("d1", "demo_request", at(1, hours=0.1))
    decision = apply_activity(CARD, recycled(GRADE_C), demo, at(1, hours=0.1), cooldown=strict)
    assert decision.state.stage is Stage.RECYCLED


def test_recycle_can_set_its_own_fresh_threshold() -> None:
    scorecard = card(
        recycle={"requires_fresh_engagement": True, "min_engagement_after_recycle": 30}
    )
    decision = run(
        recycled(),
        act("n1", "pricing_page_view", at(2)),
        act("n2", "page_view", at(2)),
        scorecard=scorecard,
    )
    assert decision.became_sales_ready


def test_without_the_guard_old_engagement_requalifies_at_once() -> None:
    scorecard = card(recycle={"requires_fresh_engagement": False})
    decision = run(recycled(), act("n1", "page_view", at(1, hours=1)), scorecard=scorecard)
    assert decision.became_sales_ready


# --- sales outcomes and recycles ----------------------------------------------------------


def reassigned_from_anna() -> LeadState:
    """An MQL that Anna had first (as-1) and Bob has now (as-2), after a reassignment."""
    state = replace(known_lead(), stage=Stage.MQL, episode=1)
    for holding in (Holding("as-2", "rep-bob", 1, 2), Holding("as-1", "rep-anna", 1, 1)):
        state = apply_assignment(state, holding)  # in either order
    return state


@pytest.mark.parametrize(
    ("rep_id", "assignment_id"), [("rep-anna", "as-1"), ("rep-anna", None)], ids=["id", "rep"]
)
def test_a_rejection_by_a_rep_the_lead_was_taken_from_does_not_recycle_it(
    rep_id: str, assignment_id: str | None
) -> None:
    state = reassigned_from_anna()
    after = apply_sales_outcome(
        state, "rejected", "s1", at(1), "bad timing", rep_id=rep_id, assignment_id=assignment_id
    )
    assert after == state


@pytest.mark.parametrize("assignment_id", ["as-2", "as-3-not-seen-yet", None])
def test_a_rejection_by_the_rep_holding_the_lead_recycles_it(assignment_id: str | None) -> None:
    after = apply_sales_outcome(
        reassigned_from_anna(), "rejected", "s1", at(1), "bad timing",
        rep_id="rep-bob", assignment_id=assignment_id,
    )  # fmt: skip
    assert (after.stage, after.recycle_reason) == (Stage.RECYCLED, "rejected_by_sales")


def test_a_new_episode_forgets_who_held_the_lead_before() -> None:
    state = apply_assignment(reassigned_from_anna(), Holding("as-3", "rep-anna", 2, 1))
    assert state.holdings == (Holding("as-3", "rep-anna", 2, 1),)
    assert apply_assignment(state, Holding("as-1", "rep-anna", 1, 1)) == state  # late, stale


@pytest.mark.parametrize(
    ("start", "outcome", "expected"),
    [
        (Stage.MQL, "accepted", Stage.SAL),
        (Stage.SAL, "qualified", Stage.SQL),
        (Stage.SQL, "opportunity_created", Stage.OPPORTUNITY),
        (Stage.OPPORTUNITY, "won", Stage.CUSTOMER),
        (Stage.MQL, "won", Stage.CUSTOMER),
        (Stage.OPPORTUNITY, "lost", Stage.RECYCLED),
        (Stage.MQL, "rejected", Stage.RECYCLED),
        (Stage.SAL, "disqualified", Stage.DISQUALIFIED),
        (Stage.RECYCLED, "accepted", Stage.SAL),
        (Stage.MQL, "contacted", Stage.MQL),
        (Stage.MQL, "contact_attempted", Stage.MQL),
        (Stage.SQL, "accepted", Stage.SQL),
        (Stage.SAL, "accepted", Stage.SAL),
        (Stage.CUSTOMER, "won", Stage.CUSTOMER),
        (Stage.RECYCLED, "rejected", Stage.RECYCLED),
        (Stage.DISQUALIFIED, "lost", Stage.DISQUALIFIED),
    ],
)
def test_sales_outcomes_move_forward_and_stale_ones_are_ignored(
    start: Stage, outcome: str, expected: Stage
) -> None:
    state = replace(known_lead(), stage=start)
    after = apply_sales_outcome(state, outcome, "s1", at(1), "no budget")
    assert after.stage is expected
    if expected is start:
        assert after is state
    else:
        assert after.history[-1] == StageChange(
            start, expected, at(1), "s1", f"sales_outcome:{outcome}", "no budget"
        )


def test_a_rejection_recycles_with_the_reps_reason() -> None:
    after = apply_sales_outcome(qualified(), "rejected", "s1", at(1), "wrong persona")
    assert (after.recycled_at, after.recycle_reason) == (at(1), "rejected_by_sales")
    assert after.history[-1].note == "wrong persona"
    assert apply_sales_outcome(after, "lost", "s2", at(2)) is after


@pytest.mark.parametrize(
    ("start", "outcome"),
    [
        (Stage.ANONYMOUS, "accepted"),
        (Stage.DISQUALIFIED, "accepted"),
        (Stage.CUSTOMER, "lost"),
        (Stage.SQL, "rejected"),
    ],
)
def test_contradictory_sales_outcomes_are_recorded_as_ignored(start: Stage, outcome: str) -> None:
    before = replace(known_lead(), stage=start)
    after = apply_sales_outcome(before, outcome, "s1", at())
    assert replace(after, ignored=()) == before  # nothing else changed
    [ignored] = after.ignored
    assert (ignored.cause_event_id, ignored.fact) == ("s1", f"sales_outcome:{outcome}")
    assert outcome in ignored.reason
    assert start.value in ignored.reason
    assert apply_sales_outcome(after, outcome, "s1", at()) is after  # a redelivery adds nothing


def test_unknown_sales_outcome_is_refused() -> None:
    with pytest.raises(UnknownOutcome, match="'promoted'"):
        apply_sales_outcome(known_lead(), "promoted", "s1", at())


def test_recycle_is_ignored_when_already_recycled_or_stale() -> None:
    state = recycled()
    assert apply_recycle(state, "rejected_by_sales", at(2), "r2") is state
    accepted = apply_sales_outcome(qualified(), "accepted", "s1", at(1, hours=1))
    assert apply_recycle(accepted, "sla_breached", at(1), "r1") is accepted


def test_only_a_manual_recycle_brings_back_a_disqualified_lead() -> None:
    gone = replace(known_lead(), stage=Stage.DISQUALIFIED)
    assert apply_recycle(gone, "disqualified", at(), "r1") is gone
    assert apply_recycle(gone, "manual", at(), "r2").stage is Stage.RECYCLED


@pytest.mark.parametrize("stage", [Stage.ANONYMOUS, Stage.CUSTOMER])
def test_recycling_a_visitor_or_a_customer_is_refused(stage: Stage) -> None:
    with pytest.raises(InvalidTransition):
        apply_recycle(replace(known_lead(), stage=stage), "manual", at(), "r1")


def test_unknown_recycle_reason_is_refused() -> None:
    with pytest.raises(ScoringError, match="'bored'"):
        apply_recycle(qualified(), "bored", at(1), "r1")


def test_naive_datetimes_are_refused_where_they_enter() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Activity("e1", "page_view", datetime(2024, 6, 3, 9, 0))


# --- persistence shape --------------------------------------------------------------------


def test_state_and_score_round_trip_through_json() -> None:
    state = merge_visitor(recycled(), [act("a1", "page_view", at(-1), url="/pricing")], "anon_1")
    state = apply_profile(state, Profile(extra={"seats": 12, "crm": "hubspot"}), "f9", at(3))
    text = state_json(state)
    assert load_state(json.loads(text)) == state
    score = dump_score(score_lead(CARD, state, at(4)))
    assert json.loads(json.dumps(score))["breakdown"][0]["axis"] == "fit"
