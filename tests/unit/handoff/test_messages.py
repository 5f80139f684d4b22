"""Between the contracts and routing: the facts routing reads, and the rep snapshot it sends."""

from __future__ import annotations

from datetime import date

from leadrelay.contracts.events import ActivityItem, LeadSalesReady
from services.handoff.messages import high_intent_actions, lead_facts, rep_snapshot

from .builders import make_rep, utc
from .support import sales_ready_data


def test_the_snapshot_carries_calendar_team_and_manager_but_never_the_email() -> None:
    rep = make_rep(
        "sdr-night",
        working_hours={"mon": ["22:00-06:00"], "tue": ["06:00-14:00"], "wed": ["00:00-24:00"]},
        holidays=[date(2025, 6, 10)],
        manager="mgr-maria",
        email="night@example.com",
    )
    snapshot = rep_snapshot(rep)
    assert snapshot.model_dump(mode="json") == {
        "time_zone": "UTC",
        "working_hours": {
            "mon": ["22:00-06:00"],
            "tue": ["06:00-14:00"],
            "wed": ["00:00-24:00"],
        },
        "holidays": ["2025-06-10"],
        "team": "core",
        "manager": "mgr-maria",
    }
    assert "example.com" not in snapshot.model_dump_json()


def test_routing_sees_the_email_domain_and_form_ids_but_never_the_address() -> None:
    ready = LeadSalesReady.model_validate(
        sales_ready_data("lk_ada", email="ada@uk.analytical-engines.example")
    )
    facts = lead_facts(ready, excluded=["sdr-a"])
    assert facts.email_domain == "uk.analytical-engines.example"
    assert (facts.country, facts.company_size, facts.grade) == ("DE", 850, "B")
    assert facts.excluded_rep_ids == {"sdr-a"}
    assert "ada@" not in facts.model_dump_json()
    assert facts.high_intent_actions == {
        "form_submitted",
        "form_submitted:demo-request",
        "pricing_page_view",
    }


def test_a_web_demo_request_is_its_own_high_intent_action() -> None:
    item = ActivityItem(event_id="e1", action="demo_request", occurred_at=utc("2025-06-04T10:00Z"))
    assert high_intent_actions([item]) == {"demo_request"}
