"""The routing decision step by step: account owner, rules, eligibility, round robin, fallback."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from services.handoff.domain import (
    Account,
    RepLoad,
    RoutingDecision,
    RoutingState,
    decide,
    record_assignment,
)

from ..builders import NOW, make_facts, make_rep, make_routing, utc

OFFICE = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
RULES = [
    {
        "id": "enterprise-to-ae",
        "description": "Big companies go straight to an AE.",
        "when": {"segment_in": ["enterprise"]},
        "assign_to": {"role": "ae"},
    },
    {
        "id": "hot-demo",
        "when": {"grade_in": ["A"], "high_intent_actions_any": ["demo_request", "trial_signup"]},
        "assign_to": {"role": "ae", "team": "closers"},
    },
    {
        "id": "emea-partners",
        "when": {"region_in": ["emea"], "qualified_by": "partner_referral"},
        "assign_to": {"role": "sdr", "team": "partners"},
    },
    {"id": "japan", "when": {"country_in": ["JP"]}, "assign_to": {"role": "sdr", "team": "jp"}},
]
ROUTING = make_routing(rules=RULES, fallback={"queue": "triage", "owner_rep_id": "manager"})
ACCOUNT = Account(id="acct-1", name="Acme", domains=("acme.com",), owner_rep_id="owner")


def _decide(reps: list[Any], *, accounts: list[Account] | None = None, **facts: Any) -> Any:
    at = facts.pop("now", NOW)
    loads = facts.pop("loads", {})
    routing = facts.pop("routing", ROUTING)
    return decide(routing, reps, accounts or [], make_facts(**facts), RoutingState(), loads, at)


def _skipped(decision: RoutingDecision) -> dict[str, str]:
    return {entry.rep_id: entry.reason for entry in decision.trace.skipped}


# --- step 1: the account owner -------------------------------------------------------------


def test_lead_from_an_account_domain_goes_to_its_owner() -> None:
    reps = [make_rep("owner", role="ae", team="closers"), make_rep("sdr-1")]
    decision = _decide(reps, accounts=[ACCOUNT], email_domain="Acme.com")
    assert (decision.rep_id, decision.route, decision.account_id) == ("owner", "account", "acct-1")
    assert (decision.role, decision.team) == ("ae", "closers")
    assert decision.trace.steps[0].outcome == "assigned"
    assert decision.new_state == RoutingState()  # the rotation is not charged for account leads


def test_subdomain_belongs_to_the_parent_account() -> None:
    decision = _decide([make_rep("owner")], accounts=[ACCOUNT], email_domain="uk.sales.acme.com")
    assert decision.route == "account"


def test_lookalike_domain_is_not_the_account() -> None:
    decision = _decide([make_rep("owner")], accounts=[ACCOUNT], email_domain="notacme.com")
    assert decision.route == "round_robin"
    assert decision.trace.steps[0].outcome == "no_account"


def test_account_without_owner_routes_by_rules() -> None:
    orphan = Account(id="acct-2", name="Orphan", domains=("orphan.io",))
    decision = _decide([make_rep("sdr-1")], accounts=[orphan], email_domain="orphan.io")
    assert decision.rep_id == "sdr-1"
    assert decision.trace.steps[0].outcome == "no_owner"


@pytest.mark.parametrize(
    ("owner_fields", "fact_fields", "reason"),
    [
        ({"active": False}, {}, "inactive"),
        ({}, {"excluded_rep_ids": {"owner"}}, "excluded_reassignment"),
        ({}, {"rejected_by_rep_ids": {"owner"}}, "rejected_lead"),
        (
            {
                "out_of_office": [
                    {"start": "2025-06-01T00:00+00:00", "end": "2025-06-10T00:00+00:00"}
                ]
            },
            {},
            "out_of_office",
        ),
        ({"holidays": [date(2025, 6, 4)]}, {}, "holiday"),
        ({"working_hours": {"mon": ["09:00-11:00"]}}, {}, "outside_working_hours"),
        ({"capacity": {"daily": 3}}, {"loads": "daily"}, "daily_capacity_reached"),
        ({"capacity": {"open": 3}}, {"loads": "open"}, "open_capacity_reached"),
    ],
)
def test_unavailable_owner_is_explained_and_routing_continues(
    owner_fields: dict[str, Any], fact_fields: dict[str, Any], reason: str
) -> None:
    loads = {
        "daily": {"owner": RepLoad(rep_id="owner", day=NOW.date(), assigned_on_day=3)},
        "open": {"owner": RepLoad(rep_id="owner", open_leads=3)},
    }
    if "loads" in fact_fields:
        fact_fields = fact_fields | {"loads": loads[fact_fields["loads"]]}
    reps = [make_rep("owner", **owner_fields), make_rep("sdr-1")]
    decision = _decide(reps, accounts=[ACCOUNT], email_domain="acme.com", **fact_fields)
    assert decision.route == "round_robin"
    assert decision.rep_id == "sdr-1"
    account_step = decision.trace.steps[0]
    assert account_step.outcome == "owner_unavailable"
    assert reason in account_step.detail


def test_owner_may_get_account_leads_outside_working_hours_when_configured() -> None:
    evening = utc("2025-06-04T20:00+00:00")
    reps = [make_rep("owner", working_hours=OFFICE), make_rep("sdr-1")]
    strict = _decide(reps, accounts=[ACCOUNT], email_domain="acme.com", now=evening)
    relaxed_routing = make_routing(account_owner_ignores_working_hours=True)
    relaxed = _decide(
        reps, accounts=[ACCOUNT], email_domain="acme.com", now=evening, routing=relaxed_routing
    )
    assert strict.rep_id == "sdr-1"
    assert relaxed.rep_id == "owner"


def test_ignoring_working_hours_still_respects_a_holiday() -> None:
    reps = [make_rep("owner", working_hours=OFFICE, holidays=[date(2025, 6, 4)]), make_rep("s")]
    routing = make_routing(account_owner_ignores_working_hours=True)
    decision = _decide(reps, accounts=[ACCOUNT], email_domain="acme.com", routing=routing)
    assert decision.rep_id == "s"
    assert "holiday" in decision.trace.steps[0].detail


# --- step 2: rules --------------------------------------------------------------------------


def test_first_matching_rule_wins() -> None:
    reps = [
        make_rep("ae-any", role="ae", team="enterprise"),
        make_rep("ae-closer", role="ae", team="closers"),
    ]
    decision = _decide(
        reps, company_size=5000, grade="A", high_intent_actions={"demo_request"}
    )  # matches enterprise-to-ae and hot-demo: the first one listed decides
    assert (decision.rule_id, decision.route, decision.team) == ("enterprise-to-ae", "rule", None)
    assert decision.trace.steps[1].outcome == "matched"
    assert "Big companies go straight to an AE." in decision.trace.steps[1].detail


@pytest.mark.parametrize(
    ("facts", "rule_id"),
    [
        ({"grade": "a", "high_intent_actions": {"trial_signup", "page_view"}}, "hot-demo"),
        ({"grade": "B", "high_intent_actions": {"demo_request"}}, None),
        ({"grade": "A", "high_intent_actions": {"pricing_page_view"}}, None),
        ({"country": "FR", "qualified_by": "partner_referral"}, "emea-partners"),
        ({"country": "US", "qualified_by": "partner_referral"}, None),
        ({"country": "FR", "qualified_by": "score"}, None),
        ({"country": "jp"}, "japan"),
        ({"company_size": 999}, None),
        ({"company_size": 1000}, "enterprise-to-ae"),
        ({}, None),
    ],
)
def test_every_condition_of_a_rule_must_hold(facts: dict[str, Any], rule_id: str | None) -> None:
    reps = [
        make_rep(f"{role}-{team}", role=role, team=team)
        for role in ("sdr", "ae")
        for team in ("closers", "partners", "jp", "core")
    ]
    decision = _decide(reps, **facts)
    assert decision.rule_id == rule_id
    assert decision.route == ("rule" if rule_id else "round_robin")


def test_no_matching_rule_uses_the_default_pool() -> None:
    decision = _decide([make_rep("ae-1", role="ae"), make_rep("sdr-1")], company_size=50)
    assert (decision.rep_id, decision.role, decision.route) == ("sdr-1", "sdr", "round_robin")
    assert decision.trace.steps[1].outcome == "default"
    assert decision.segment == "smb"


# --- step 3: eligibility and the round robin ------------------------------------------------


def test_every_skip_reason_is_reported_for_the_rep_it_applies_to() -> None:
    routing = make_routing(rules=[{"id": "core", "assign_to": {"role": "sdr", "team": "core"}}])
    loads = {
        "full-today": RepLoad(rep_id="full-today", day=NOW.date(), assigned_on_day=2),
        "full-open": RepLoad(rep_id="full-open", open_leads=10),
    }
    away = {"start": "2025-06-04T00:00+00:00", "end": "2025-06-05T00:00+00:00"}
    reps = [
        make_rep("an-ae", role="ae"),
        make_rep("other-team", team="other"),
        make_rep("inactive", active=False),
        make_rep("americas", territories=["amer"]),
        make_rep("smb-only", segments=["smb"]),
        make_rep("had-it"),
        make_rep("away", out_of_office=[away]),
        make_rep("holiday", holidays=[date(2025, 6, 4)]),
        make_rep("early-bird", working_hours={"wed": ["06:00-11:00"]}),
        make_rep("full-today", capacity={"daily": 2}),
        make_rep("full-open", capacity={"open": 10}),
        make_rep("free", territories=["emea"], segments=["mid_market"]),
    ]
    decision = _decide(
        reps,
        routing=routing,
        country="DE",
        company_size=500,
        excluded_rep_ids={"had-it"},
        loads=loads,
    )
    assert decision.rep_id == "free"
    assert _skipped(decision) == {
        "an-ae": "role_mismatch",
        "other-team": "team_mismatch",
        "inactive": "inactive",
        "americas": "territory_mismatch",
        "smb-only": "segment_mismatch",
        "had-it": "excluded_reassignment",
        "away": "out_of_office",
        "holiday": "holiday",
        "early-bird": "outside_working_hours",
        "full-today": "daily_capacity_reached",
        "full-open": "open_capacity_reached",
    }


@pytest.mark.parametrize(
    ("country", "eligible"),
    [
        ("DE", {"de", "emea", "anywhere"}),  # by country code and by region
        ("GB", {"emea", "anywhere"}),
        ("US", {"amer", "anywhere"}),
        ("BR", {"anywhere"}),  # a country in no region: only reps without territories
        (None, {"de", "emea", "amer", "anywhere"}),  # unknown country cannot rule anyone out
    ],
)
def test_territory_narrows_by_country_or_region(country: str | None, eligible: set[str]) -> None:
    reps = [
        make_rep("de", territories=["DE"]),
        make_rep("emea", territories=["emea"]),
        make_rep("amer", territories=["amer", "apac"]),
        make_rep("anywhere"),
    ]
    decision = _decide(reps, country=country)
    assert {rep.id for rep in reps} - set(_skipped(decision)) == eligible


@pytest.mark.parametrize(
    ("company_size", "eligible"),
    [(10, {"smb", "all"}), (5000, {"big", "all"}), (None, {"smb", "big", "all"})],
)
def test_segment_narrows_by_company_size(company_size: int | None, eligible: set[str]) -> None:
    routing = make_routing()  # no rules: enterprise leads stay in the sdr pool
    reps = [
        make_rep("smb", segments=["smb"]),
        make_rep("big", segments=["mid_market", "enterprise"]),
        make_rep("all"),
    ]
    decision = _decide(reps, routing=routing, company_size=company_size)
    assert {rep.id for rep in reps} - set(_skipped(decision)) == eligible


def test_working_hours_can_be_ignored_but_holidays_still_count() -> None:
    evening = utc("2025-06-04T20:00+00:00")
    reps = [make_rep("office", working_hours=OFFICE), make_rep("off", holidays=[date(2025, 6, 4)])]
    routing = make_routing(respect_working_hours=False)
    decision = _decide(reps, routing=routing, now=evening)
    assert decision.rep_id == "office"
    assert _skipped(decision) == {"off": "holiday"}


def test_daily_capacity_resets_at_the_reps_local_midnight() -> None:
    rep = make_rep("jp", time_zone="Asia/Tokyo", capacity={"daily": 2})
    loads = {"jp": RepLoad(rep_id="jp", day=date(2025, 6, 4), assigned_on_day=2)}
    before = _decide([rep], loads=loads, now=utc("2025-06-04T23:59+09:00"))
    after = _decide([rep], loads=loads, now=utc("2025-06-05T00:00+09:00"))
    assert _skipped(before) == {"jp": "daily_capacity_reached"}
    assert after.rep_id == "jp"


def test_recorded_assignments_count_per_local_day() -> None:
    rep = make_rep("la", time_zone="America/Los_Angeles")
    late_evening = utc("2025-06-04T23:30-07:00")  # already 5 June in UTC
    load = record_assignment(None, rep, late_evening)
    load = record_assignment(load, rep, late_evening + timedelta(minutes=10))
    assert (load.day, load.assigned_on_day, load.open_leads) == (date(2025, 6, 4), 2, 2)
    next_day = record_assignment(load, rep, utc("2025-06-05T00:05-07:00"))
    assert (next_day.day, next_day.assigned_on_day, next_day.open_leads) == (date(2025, 6, 5), 1, 3)


def test_out_of_office_without_offset_is_read_on_the_reps_clock() -> None:
    away = {"start": "2025-06-05T00:00", "end": "2025-06-06T00:00"}
    rep = make_rep("jp", time_zone="Asia/Tokyo", out_of_office=[away])
    assert _decide([rep], now=utc("2025-06-04T23:59+09:00")).rep_id == "jp"
    assert _skipped(_decide([rep], now=utc("2025-06-05T00:00+09:00"))) == {"jp": "out_of_office"}


def test_reassignment_never_returns_the_lead_to_a_previous_rep() -> None:
    reps = [make_rep("first"), make_rep("second"), make_rep("third")]
    decision = _decide(reps, episode=2, excluded_rep_ids={"first", "second"})
    assert decision.rep_id == "third"


def test_round_robin_trace_names_the_pool_and_the_choice() -> None:
    decision = _decide([make_rep("a", weight=3), make_rep("b")], country="DE", company_size=300)
    eligibility, choice = decision.trace.steps[2:]
    assert eligibility.outcome == "eligible"
    assert "sdr:*" in eligibility.detail
    assert "DE" in eligibility.detail
    assert choice.outcome == "chosen"
    assert "weight 3" in choice.detail
    assert decision.rep_id == "a"
    assert "chose a" in decision.trace.chosen_reason


# --- step 4: fallback -----------------------------------------------------------------------


def test_nobody_eligible_goes_to_the_fallback_queue_and_its_owner() -> None:
    reps = [make_rep("manager", role="ae", team="mgmt"), make_rep("away", active=False)]
    decision = _decide(reps)
    assert (decision.route, decision.fallback_queue, decision.rep_id) == (
        "fallback",
        "triage",
        "manager",
    )
    assert decision.role == "sdr"
    assert decision.trace.steps[-1].step == "fallback"
    assert decision.new_state == RoutingState()


def test_fallback_owner_who_already_had_the_lead_leaves_it_in_the_queue() -> None:
    decision = _decide([make_rep("manager", role="ae")], excluded_rep_ids={"manager"})
    assert (decision.route, decision.fallback_queue, decision.rep_id) == (
        "fallback",
        "triage",
        None,
    )
    assert "already had this lead" in decision.trace.chosen_reason


def test_fallback_without_owner_leaves_the_lead_unassigned() -> None:
    decision = _decide([], routing=make_routing())
    assert (decision.route, decision.fallback_queue, decision.rep_id) == (
        "fallback",
        "unassigned-leads",
        None,
    )


# --- properties of the whole decision -------------------------------------------------------


def test_decision_is_deterministic_whatever_the_roster_order() -> None:
    reps = [make_rep(name, weight=weight) for name, weight in (("c", 1), ("a", 2), ("b", 2))]
    forwards = _decide(reps, country="DE")
    backwards = _decide(list(reversed(reps)), country="DE")
    assert forwards == backwards


def test_rep_email_addresses_never_appear_in_the_decision() -> None:
    reps = [
        make_rep("a", email="ana@example.com"),
        make_rep("b", email="ben@example.com", active=False),
    ]
    text = _decide(reps).model_dump_json()
    assert "@" not in text


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _decide([make_rep("a")], now=datetime(2025, 6, 4, 12, 0))
