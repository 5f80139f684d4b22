"""The scoring service's handlers on a real SQLite store: identity, hand-off, recycling, outputs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from leadrelay.contracts.envelope import CloudEvent, stable_event_id
from leadrelay.contracts.schemas import validate_event
from services.scoring.domain import Stage
from services.scoring.handlers import SOURCE
from tests.unit.scoring.service_events import (
    ADA_COOKIE,
    ADA_FIT,
    ADA_KEY,
    DEMO_AT,
    HALF_LIFE,
    T0,
    TWO_WEEKS_AGO,
    ada_journey,
    anonymous_session,
    form,
    recycled,
    sales,
    web,
)
from tests.unit.scoring.support import TOPICS, ScoringHarness, scoring_harness
from tests.unit.sla_monitor.support import lead_assigned, sales_activity


@pytest.fixture
async def scoring(tmp_path: Path) -> AsyncIterator[ScoringHarness]:
    async with scoring_harness(tmp_path) as harness:
        yield harness


def lines(event: CloudEvent) -> dict[str, dict[str, Any]]:
    return {line["rule"]: line for line in event.data["breakdown"]}


async def qualify_ada(scoring: ScoringHarness) -> None:
    scoring.clock.now = DEMO_AT
    await scoring.deliver(*ada_journey())


async def test_anonymous_activity_waits_for_the_form_and_then_counts_at_its_original_time(
    scoring: ScoringHarness,
) -> None:
    await scoring.deliver(*anonymous_session(TWO_WEEKS_AGO))
    assert await scoring.published(TOPICS.scores) == []
    assert await scoring.state(ADA_KEY) is None

    await scoring.deliver(form("ebook", T0, anonymous_id=ADA_COOKIE))

    [scored] = await scoring.published(TOPICS.scores)
    breakdown = lines(scored)
    assert breakdown["page_view"]["source_event_ids"] == ["pv-1", "pv-2"]
    assert breakdown["page_view"]["points"] == 1.0  # 2 points, 14 days old: half
    assert breakdown["pricing_page"]["points"] == 5.0
    assert breakdown["form_fill"]["points"] == 10.0
    assert scored.data["engagement_score"] == 16.0
    assert scored.data["stage"] == "lead"
    assert scored.data["grade"] == "A"
    assert scored.id == stable_event_id("scored", "ebook")
    assert scored.subject == ADA_KEY


async def test_anonymous_activity_arriving_after_the_form_is_scored_at_its_original_time(
    scoring: ScoringHarness,
) -> None:
    await scoring.deliver(form("ebook", T0, anonymous_id=ADA_COOKIE))
    late = web("pv-early", TWO_WEEKS_AGO, anonymous_id=ADA_COOKIE)
    await scoring.deliver(late)

    first, second = await scoring.published(TOPICS.scores)
    assert "page_view" not in lines(first)
    assert lines(second)["page_view"] == {"rule": "page_view", "axis": "engagement",
                                          "points": 0.5, "raw_points": 1.0,
                                          "decay_factor": 0.5,
                                          "source_event_ids": ["pv-early"]}  # fmt: skip
    state = await scoring.state(ADA_KEY)
    assert [a.event_id for a in state.activities] == ["pv-early", "ebook"]


async def test_a_journey_hands_off_once_with_everything_sales_needs(
    scoring: ScoringHarness,
) -> None:
    await qualify_ada(scoring)

    [ready] = await scoring.published(TOPICS.sales_ready)
    validate_event(ready)
    data = ready.data
    assert ready.id == stable_event_id("sales_ready", ADA_KEY, "1")
    assert (data["episode"], data["grade"], data["qualified_by"]) == (1, "A", "fast_track")
    assert data["fit_score"] == 70.0
    assert data["engagement_score"] == 46.0
    assert {rule: line["points"] for rule, line in lines(ready).items()} == {
        **ADA_FIT, "page_view": 1.0, "pricing_page": 5.0, "form_fill": 10.0, "demo_request": 30.0,
    }  # fmt: skip
    # the ebook's form_fill and the demo share the demo_intent group's cap of 40
    assert lines(ready)["demo_request"]["limited_by"] == "group:demo_intent"
    assert lines(ready)["demo_request"]["source_event_ids"] == ["demo"]
    assert data["profile"]["email"] == "ada@acme.example"
    assert data["profile"]["phone"] == "+15550100"
    assert [a["event_id"] for a in data["recent_activity"]] == [
        "demo", "ebook", "pv-2", "pv-1", "pricing-1"]  # fmt: skip
    assert [a["event_id"] for a in data["high_intent"]] == ["demo", "ebook", "pricing-1"]
    history = [(t["from_stage"], t["to_stage"], t["rule"]) for t in data["lifecycle_history"]]
    assert history == [("anonymous", "lead", "identified"),
                       ("lead", "mql", "fast_track:demo_request")]  # fmt: skip
    assert data["scorecard_version"] == scoring.scorecard.version
    assert (await scoring.state(ADA_KEY)).stage is Stage.MQL


async def test_redelivery_and_replay_without_the_inbox_publish_nothing_new(
    scoring: ScoringHarness,
) -> None:
    await qualify_ada(scoring)
    journey = ada_journey()
    state = await scoring.state(ADA_KEY)
    outputs = await scoring.published(TOPICS.scores) + await scoring.published(TOPICS.sales_ready)

    scoring.clock.now = DEMO_AT + timedelta(hours=1)
    await scoring.deliver(*journey)
    for event in journey[3:]:  # the lead's own facts, applied again by the handlers themselves
        await scoring.apply(event)

    assert await scoring.state(ADA_KEY) == state
    assert (
        await scoring.published(TOPICS.scores) + await scoring.published(TOPICS.sales_ready)
        == outputs
    )


async def test_an_activity_no_rule_counts_is_recorded_but_does_not_rescore(
    scoring: ScoringHarness,
) -> None:
    await scoring.deliver(form("ebook", T0))
    await scoring.deliver(web("video", T0, "video_play", key=ADA_KEY))

    assert len(await scoring.published(TOPICS.scores)) == 1
    assert [a.event_id for a in (await scoring.state(ADA_KEY)).activities] == ["ebook", "video"]


async def test_a_rejection_recycles_the_lead_and_tells_marketing_why_once(
    scoring: ScoringHarness,
) -> None:
    await qualify_ada(scoring)
    rejected_at = T0 + timedelta(hours=2)
    rejected = sales("rej", rejected_at, "rejected", reason="no budget")
    await scoring.deliver(sales("acc", T0 + timedelta(hours=1), "accepted"), rejected, rejected)

    [recycle] = await scoring.published(TOPICS.recycled)
    validate_event(recycle)
    assert recycle.id == stable_event_id("recycled", "rej")
    assert recycle.source == SOURCE
    assert recycle.data == {"lead_key": ADA_KEY, "reason": "rejected_by_sales",
                            "detail": "no budget", "rep_id": "rep-7", "assignment_id": "as-1",
                            "recycled_at": "2024-06-03T11:00:00Z"}  # fmt: skip
    state = await scoring.state(ADA_KEY)
    await scoring.deliver(recycle)  # our own, consumed from the recycled topic
    await scoring.deliver(recycled("sla", rejected_at + timedelta(minutes=5)))
    assert await scoring.state(ADA_KEY) == state
    assert [c.to_stage for c in state.history] == [Stage.LEAD, Stage.MQL, Stage.SAL,
                                                   Stage.RECYCLED]  # fmt: skip


async def test_a_rejection_by_a_rep_the_lead_was_reassigned_from_keeps_it_with_the_new_rep(
    scoring: ScoringHarness,
) -> None:
    await qualify_ada(scoring)
    await scoring.deliver(
        lead_assigned("as-1", "rep-anna", DEMO_AT, lead_key=ADA_KEY),
        lead_assigned("as-2", "rep-7", DEMO_AT + timedelta(hours=2), lead_key=ADA_KEY, attempt=2),
    )
    late = sales_activity("rejected", "rep-anna", DEMO_AT + timedelta(hours=3),
                          reason="bad timing", assignment_id="as-1", lead_key=ADA_KEY)  # fmt: skip
    await scoring.deliver(late)
    assert (await scoring.state(ADA_KEY)).stage is Stage.MQL
    assert await scoring.published(TOPICS.recycled) == []

    holder = sales_activity(
        "rejected", "rep-7", DEMO_AT + timedelta(hours=4),
        reason="bad timing", assignment_id="as-2", lead_key=ADA_KEY,
    )  # fmt: skip
    await scoring.deliver(holder)
    assert (await scoring.state(ADA_KEY)).stage is Stage.RECYCLED
    assert len(await scoring.published(TOPICS.recycled)) == 1


async def test_a_disqualification_ends_the_lead_and_tells_marketing_why(
    scoring: ScoringHarness,
) -> None:
    await qualify_ada(scoring)
    await scoring.deliver(sales("dq", T0 + timedelta(hours=1), "disqualified", reason="student"))

    [recycle] = await scoring.published(TOPICS.recycled)
    assert (recycle.data["reason"], recycle.data["detail"]) == ("disqualified", "student")
    state = await scoring.state(ADA_KEY)
    assert state.stage is Stage.DISQUALIFIED  # not nurtured back: marketing decides what to do
    await scoring.deliver(recycle)
    assert await scoring.state(ADA_KEY) == state


async def test_a_lost_opportunity_recycles_the_lead_and_tells_marketing_why(
    scoring: ScoringHarness,
) -> None:
    await qualify_ada(scoring)
    lost_at = T0 + timedelta(days=20)
    await scoring.deliver(sales("sql", T0 + timedelta(hours=1), "qualified"),
                          sales("lost", lost_at, "lost", reason="chose a rival"))  # fmt: skip

    [recycle] = await scoring.published(TOPICS.recycled)
    validate_event(recycle)
    assert recycle.id == stable_event_id("recycled", "lost")
    assert recycle.source == SOURCE
    assert recycle.data == {"lead_key": ADA_KEY, "reason": "lost",
                            "detail": "chose a rival", "rep_id": "rep-7",
                            "assignment_id": "as-1",
                            "recycled_at": "2024-06-23T09:00:00Z"}  # fmt: skip
    state = await scoring.state(ADA_KEY)
    await scoring.deliver(recycle)  # our own, consumed from the recycled topic
    assert await scoring.state(ADA_KEY) == state
    assert [c.to_stage for c in state.history] == [Stage.LEAD, Stage.MQL, Stage.SQL,
                                                   Stage.RECYCLED]  # fmt: skip


async def test_a_recycled_lead_needs_engagement_after_the_recycle_to_qualify_again(
    scoring: ScoringHarness,
) -> None:
    await qualify_ada(scoring)
    recycled_at = T0 + timedelta(days=1)
    scoring.clock.now = recycled_at + timedelta(minutes=1)
    await scoring.deliver(recycled("breach", recycled_at))
    assert (await scoring.state(ADA_KEY)).stage is Stage.RECYCLED

    # a demo request from before the recycle, reported late, and a little fresh browsing
    await scoring.deliver(web("old-demo", T0 + timedelta(hours=3), "demo_request", key=ADA_KEY),
                          web("fresh-pv", scoring.clock.now, key=ADA_KEY))  # fmt: skip
    assert len(await scoring.published(TOPICS.sales_ready)) == 1

    scoring.clock.now = recycled_at + timedelta(days=2)
    await scoring.deliver(web("new-demo", scoring.clock.now, "demo_request", key=ADA_KEY))
    first, second = await scoring.published(TOPICS.sales_ready)
    assert second.data["episode"] == 2
    assert second.id != first.id
    assert second.data["lifecycle_history"][-1]["cause_event_id"] == "new-demo"


async def test_a_customer_sales_reported_first_is_not_handed_off_when_they_fill_a_form(
    scoring: ScoringHarness,
) -> None:
    await scoring.deliver(sales("won", T0 - timedelta(days=30), "won"))
    assert (await scoring.state(ADA_KEY)).stage is Stage.CUSTOMER

    await qualify_ada(scoring)  # the whole buying journey, as a customer browsing again
    assert await scoring.published(TOPICS.sales_ready) == []
    assert (await scoring.state(ADA_KEY)).stage is Stage.CUSTOMER


async def test_a_recycle_of_a_lead_scoring_never_saw_is_skipped(scoring: ScoringHarness) -> None:
    await scoring.deliver(recycled("r1", T0, key="lk_unknown"))
    assert await scoring.state("lk_unknown") is None
    assert await scoring.view("lk_unknown") is None


async def test_a_sales_outcome_the_stage_rules_out_is_on_the_timeline_counted_not_retried(
    scoring: ScoringHarness,
) -> None:
    await scoring.deliver(form("ebook", T0), sales("won", T0 + timedelta(days=30), "won"))
    customer = await scoring.state(ADA_KEY)
    assert customer.stage is Stage.CUSTOMER

    await scoring.deliver(sales("lost", T0 + timedelta(days=31), "lost"))  # does not raise
    after = await scoring.state(ADA_KEY)
    assert replace(after, ignored=()) == customer
    assert await scoring.published(TOPICS.recycled) == []
    view = await scoring.view(ADA_KEY)
    assert view is not None
    [entry] = [e for e in view["timeline"] if e["kind"] == "ignored"]
    assert entry["fact"] == "sales_outcome:lost"
    assert "customer" in entry["reason"]
    counted = scoring.metric(
        "leadrelay_scoring_sales_outcomes_ignored_total", outcome="lost", stage="customer"
    )
    assert counted == 1.0


async def test_a_shared_device_does_not_give_one_persons_history_to_another(
    scoring: ScoringHarness,
) -> None:
    bob = "bob@acme.example"
    await scoring.deliver(form("ebook", T0, anonymous_id=ADA_COOKIE))
    await scoring.deliver(form("bob-form", T0 + timedelta(hours=1), bob, anonymous_id=ADA_COOKIE))
    await scoring.deliver(web("pv-later", T0 + timedelta(hours=2), anonymous_id=ADA_COOKIE))

    ada = await scoring.state(ADA_KEY)
    assert [a.event_id for a in ada.activities] == ["ebook", "pv-later"]
    [bob_key] = {e.subject or "" for e in await scoring.published(TOPICS.scores)} - {ADA_KEY}
    assert [a.event_id for a in (await scoring.state(bob_key)).activities] == ["bob-form"]


async def test_the_read_model_explains_the_score_and_tells_the_story_in_order(
    scoring: ScoringHarness,
) -> None:
    await qualify_ada(scoring)

    view = await scoring.view(ADA_KEY)
    assert view is not None
    assert (view["stage"], view["grade"], view["episode"]) == ("mql", "A", 1)
    assert (view["fit_score"], view["engagement_score"]) == (70.0, 46.0)
    assert view["profile"]["email"] == "ada@acme.example"
    assert view["anonymous_ids"] == [ADA_COOKIE]
    assert [(e["kind"], e.get("event_id") or e["to_stage"]) for e in view["timeline"]] == [
        ("activity", "pricing-1"), ("activity", "pv-1"), ("activity", "pv-2"),
        ("activity", "ebook"), ("stage_change", "lead"), ("activity", "demo"),
        ("stage_change", "mql"),
    ]  # fmt: skip

    later = await scoring.view(ADA_KEY, scorecard=scoring.scorecard, now=DEMO_AT + HALF_LIFE)
    assert later is not None
    assert later["engagement_score"] == 23.0  # every activity two weeks older: half
    assert later["fit_score"] == 70.0


async def test_the_timeline_keeps_the_lifecycle_order_when_a_crm_clock_runs_behind(
    scoring: ScoringHarness,
) -> None:
    await qualify_ada(scoring)
    # the CRM stamps the acceptance three hours before the demo that made Ada an MQL
    await scoring.deliver(sales("accepted", DEMO_AT - timedelta(hours=3), "accepted"))

    view = await scoring.view(ADA_KEY)
    assert view is not None
    changes = [e for e in view["timeline"] if e["kind"] == "stage_change"]
    assert [(e["from_stage"], e["to_stage"]) for e in changes] == [
        ("anonymous", "lead"), ("lead", "mql"), ("mql", "sal"),
    ]  # fmt: skip
    assert view["timeline"][-1]["to_stage"] == "sal"


async def test_metrics_count_events_transitions_and_hand_offs(scoring: ScoringHarness) -> None:
    await qualify_ada(scoring)

    assert scoring.metric("leadrelay_scoring_sales_ready_total", grade="A") == 1
    assert scoring.metric("leadrelay_scoring_stage_transitions_total",
                          from_stage="lead", to_stage="mql") == 1  # fmt: skip
    assert scoring.metric("leadrelay_scoring_events_scored_total",
                          event_type="leadrelay.web_activity.v1") == 4  # fmt: skip
    assert scoring.metric("leadrelay_scoring_latency_seconds_count",
                          event_type="leadrelay.form_submitted.v1") == 1  # fmt: skip


async def test_an_activity_carrying_both_ids_links_the_visitor_like_a_form(
    scoring: ScoringHarness,
) -> None:
    await scoring.deliver(*anonymous_session(TWO_WEEKS_AGO))
    await scoring.deliver(web("click", T0, "email_click", key=ADA_KEY, anonymous_id=ADA_COOKIE,
                              email="ada@acme.example"))  # fmt: skip
    await scoring.deliver(web("pv-3", T0, anonymous_id=ADA_COOKIE))

    state = await scoring.state(ADA_KEY)
    assert state.stage is Stage.LEAD
    assert [a.event_id for a in state.activities] == ["pricing-1", "pv-1", "pv-2", "click", "pv-3"]


async def test_a_visitor_keeps_only_the_activity_within_the_retention(
    scoring: ScoringHarness,
) -> None:
    """A cookie that browsed 400 days ago and again today brings only today's visit along."""
    a_year_and_more = T0 - timedelta(days=400)
    scoring.clock.now = a_year_and_more
    await scoring.deliver(web("pv-ancient", a_year_and_more, anonymous_id=ADA_COOKIE))
    scoring.clock.now = T0
    await scoring.deliver(web("pv-today", T0, anonymous_id=ADA_COOKIE))
    assert await scoring.parked(ADA_COOKIE) == ["pv-today"]
    await scoring.deliver(form("ebook", T0, anonymous_id=ADA_COOKIE))

    state = await scoring.state(ADA_KEY)
    assert {a.event_id for a in state.activities} == {"pv-today", "ebook"}
    [scored] = await scoring.published(TOPICS.scores)
    assert lines(scored)["page_view"]["source_event_ids"] == ["pv-today"]


async def test_every_stage_transition_is_announced_once_on_the_lifecycle_topic(
    scoring: ScoringHarness,
) -> None:
    await qualify_ada(scoring)
    await scoring.deliver(
        sales("acc", T0 + timedelta(hours=1), "accepted"),
        sales("rej", T0 + timedelta(hours=2), "rejected", reason="no budget"),
    )
    state = await scoring.state(ADA_KEY)
    await scoring.apply(sales("rej", T0 + timedelta(hours=2), "rejected", reason="no budget"))

    changes = await scoring.published(TOPICS.lifecycle)
    for change in changes:
        validate_event(change)
    moves = [(c.data["from_stage"], c.data["to_stage"], c.data["episode"]) for c in changes]
    assert moves == [("anonymous", "lead", 0), ("lead", "mql", 1), ("mql", "sal", 1),
                     ("sal", "recycled", 1)]  # fmt: skip
    assert [c.data["at"] for c in changes] == [
        t.at.isoformat().replace("+00:00", "Z") for t in state.history
    ]
    accepted, rejected = changes[2].data, changes[3].data
    assert (accepted["cause_event_id"], accepted["attributes"]["rep_id"]) == ("acc", "rep-7")
    assert (rejected["rule"], rejected["note"]) == (state.history[-1].rule, "no budget")
    assert changes[1].data["attributes"]["grade"] == "A"
    assert changes[0].data["attributes"]["country"] == state.profile.country
    assert len({c.id for c in changes}) == 4
