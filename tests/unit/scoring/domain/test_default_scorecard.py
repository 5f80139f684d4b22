"""The shipped scorecard on realistic journeys: a buyer qualifies, a student does not."""

from __future__ import annotations

from services.scoring.domain import (
    Activity,
    Decision,
    LeadState,
    Profile,
    Stage,
    apply_activity,
    apply_form_submission,
    evaluate_fit,
    load_default_scorecard,
    merge_visitor,
)

from ..helpers import act, at

CARD = load_default_scorecard()

VP = Profile(
    email="dana@northwind-software.example",
    first_name="Dana",
    job_title="VP of Operations",
    company="Northwind Software",
    company_size=200,
    industry="Software",
    country="US",
)
STUDENT = Profile(email="kim.student@gmail.com", job_title="Student", country="US")


def browse_then_fill_form(profile: Profile) -> Decision:
    """Three page views and the pricing page as a visitor, then an ebook form a day later."""
    visitor = [
        act("v1", "page_view", at(hours=0), url="https://example.com/"),
        act("v2", "page_view", at(hours=1), url="https://example.com/product"),
        act("v3", "page_view", at(hours=2), url="https://example.com/integrations"),
        act("v4", "pricing_page_view", at(hours=3), url="https://example.com/pricing"),
    ]
    lead = merge_visitor(LeadState("lk_dana"), visitor, "anon_42")
    form = act("f1", "form_submitted", at(1), form_id="ebook-download")
    return apply_form_submission(CARD, lead, profile, form, at(1))


def test_a_vp_at_a_target_company_becomes_sales_ready_on_a_demo_request() -> None:
    form = browse_then_fill_form(VP)
    assert form.state.stage is Stage.LEAD
    assert form.score.grade == "A"
    assert not form.became_sales_ready

    demo = apply_activity(CARD, form.state, act("d1", "demo_request", at(2)), at(2))
    assert demo.became_sales_ready
    assert demo.qualified_by == "fast_track"
    assert demo.score.engagement >= CARD.sales_ready.min_engagement  # thresholds hold too
    assert [c.to_stage for c in demo.state.history] == [Stage.LEAD, Stage.MQL]
    sources = {line.rule: line.source_event_ids for line in demo.score.breakdown}
    assert sources["page_view"] == ("v1", "v2", "v3")
    assert sources["demo_request"] == ("d1",)


def test_a_student_with_free_mail_never_qualifies() -> None:
    form = browse_then_fill_form(STUDENT)
    assert form.score.grade == "D"
    demo = apply_activity(CARD, form.state, act("d1", "demo_request", at(2)), at(2))
    webinar = apply_activity(CARD, demo.state, act("w1", "webinar_attended", at(2)), at(2))
    assert webinar.score.engagement >= CARD.sales_ready.min_engagement
    assert (webinar.state.stage, webinar.became_sales_ready) == (Stage.LEAD, False)
    assert {line.rule for line in evaluate_fit(CARD, STUDENT).breakdown} == {
        "country_served",
        "student_title",
        "free_mail",
    }


def test_endless_page_views_do_not_qualify_a_good_fit_lead() -> None:
    views = tuple(Activity(f"v{i}", "page_view", at(hours=i / 100)) for i in range(500))
    lead = LeadState("lk_dana", stage=Stage.LEAD, profile=VP, activities=views)
    decision = apply_activity(CARD, lead, Activity("last", "page_view", at(5)), at(5))
    assert decision.score.engagement <= 10
    assert decision.state.stage is Stage.LEAD


def test_job_seekers_lose_engagement() -> None:
    lead = LeadState("lk_dana", stage=Stage.LEAD, profile=VP)
    decision = apply_activity(
        CARD, lead, act("c1", "page_view", at(), url="https://example.com/careers/sre"), at()
    )
    assert {
        line.rule: line.points for line in decision.score.breakdown if line.axis == "engagement"
    } == {
        "page_view": 1,
        "careers_url": -10,
    }
