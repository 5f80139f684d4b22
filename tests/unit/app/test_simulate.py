"""``leadrelay simulate`` without an instance: the traffic it plans, its funnel, and its waiting.

The planned events go through ingest's own mapping, so "the instance accepts them and files
them under the lead key the simulator later reads" is checked, not assumed.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from leadrelay.app import simulate
from leadrelay.app.simulate import (
    PERSONAS,
    Journey,
    Persona,
    Simulator,
    funnel_report,
    lead_settled,
    plan_journeys,
    reaction_visible,
)
from leadrelay.contracts.envelope import CloudEvent
from leadrelay.runtime.backoff import BackoffPolicy
from leadrelay.settings import load_settings
from services.ingest.domain.mapping.cloudevents import map_event
from services.ingest.domain.mapping.common import IngestContext
from services.ingest.domain.signatures import verify_standard_webhook

SECRET = "simulate-test-secret"
SETTINGS = load_settings(lead_key_secret=SECRET)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
FREE_MAIL = {"gmail.com", "yahoo.com", "uni.edu"}


def plan(
    count: int, *, seed: int = 7, run: str = "run1", personas: tuple[Persona, ...] = PERSONAS
) -> list[Journey]:
    return plan_journeys(count, random.Random(seed), SETTINGS, NOW, run=run, personas=personas)


def shape(journeys: list[Journey]) -> list[tuple[str, list[str]]]:
    """What each visitor does, without who they are."""
    return [(j.persona.name, [e["data"].get("action") or e["data"]["form_id"] for e in j.events])
            for j in journeys]  # fmt: skip


def ingested(event: dict[str, Any]) -> CloudEvent:
    return map_event(event, IngestContext(lead_key_secret=SECRET, now=NOW))


def persona(*, identify: float, demo: float) -> Persona:
    return Persona("test", 1.0, ["CTO"], (50, 60), ["software"], ["DE"],
                   lambda rng, n: "acme.example", identify=identify, demo=demo)  # fmt: skip


def test_a_seed_reproduces_the_traffic_and_each_run_brings_new_people() -> None:
    first, again, next_run = plan(50), plan(50), plan(50, run="run2")

    assert [j.events for j in again] == [j.events for j in first]
    assert shape(next_run) == shape(first)
    assert {j.anonymous_id for j in next_run}.isdisjoint(j.anonymous_id for j in first)
    emails = {j.email for j in first if j.email}
    assert len(emails) > 10
    assert emails.isdisjoint(j.email for j in next_run)
    assert shape(plan(50, seed=8)) != shape(first)


def test_ingest_accepts_every_planned_event_under_the_lead_key_the_simulator_reads() -> None:
    journeys = plan(200)

    for journey in journeys:
        keys = {ingested(event).data.get("lead_key") for event in journey.events}
        assert keys - {None} == ({journey.lead_key} if journey.lead_key else set())
    ids = [event["id"] for journey in journeys for event in journey.events]
    assert len(ids) == len(set(ids))


def test_each_visitor_browses_in_order_within_the_last_three_days() -> None:
    for journey in plan(200):
        times = [datetime.fromisoformat(e["time"]) for e in journey.events]
        assert times == sorted(times)
        assert NOW - timedelta(hours=72) < times[0] < NOW
        assert 2 <= sum(e["data"].get("action") == "page_view" for e in journey.events) <= 7


@pytest.mark.parametrize("kind", PERSONAS, ids=lambda p: p.name)
def test_each_persona_fills_forms_as_that_kind_of_visitor(kind: Persona) -> None:
    forms = [e["data"] for j in plan(60, personas=(kind,)) for e in j.events
             if e["type"] == "leadrelay.form_submitted.v1"]  # fmt: skip

    assert forms, f"no {kind.name} identified in 60 visits"
    for form in forms:
        profile = form["profile"]
        assert profile["job_title"] in kind.job_titles
        assert kind.company_size[0] <= profile["company_size"] <= kind.company_size[1]
        assert (profile["industry"], profile["country"]) in {
            (i, c) for i in kind.industries for c in kind.countries
        }
    domains = {form["email"].rsplit("@", 1)[1] for form in forms}
    assert (domains <= FREE_MAIL) == (kind.name == "student")


def test_a_visitor_who_never_identifies_stays_anonymous() -> None:
    journeys = plan(30, personas=(persona(identify=0.0, demo=1.0),))

    assert all(j.email is None and j.lead_key is None for j in journeys)
    assert {e["type"] for j in journeys for e in j.events} == {"leadrelay.web_activity.v1"}


def test_a_visitor_who_wants_a_demo_fills_the_demo_form_then_requests_it_by_email() -> None:
    for journey in plan(30, personas=(persona(identify=1.0, demo=1.0),)):
        *_, form, demo = journey.events
        assert form["data"]["form_id"] == "demo-request"
        assert (demo["data"]["action"], demo["data"]["email"]) == ("demo_request", journey.email)
        assert str(journey.email).endswith("@acme.example")


def test_the_funnel_counts_what_the_lead_views_show() -> None:
    """Sales clocks on one line, marketing's clocks on recycled leads on their own."""
    journeys = [
        _journey(0, None),
        _journey(1, {"stage": "lead", "episode": 0}),
        _journey(2, _lead("sal", {"rep_id": "ae-dana"}, _clock("completed"))),
        _journey(3, _lead("mql", {"rep_id": "sdr-sam"},
                          _clock("breached", "warn", "breach"), _clock("running"))),
        _journey(4, _lead("recycled", {"rep_id": None, "fallback_queue": "unrouted"},
                          _clock("warned", "warn"), _marketing_clock("running"))),
        _journey(5, _lead("mql", {"rep_id": "ae-dana"}, _clock("stopped"))),
    ]  # fmt: skip

    assert funnel_report(journeys).splitlines() == [
        "",
        "LeadRelay simulation",
        "  visitors                    6",
        "  identified leads            5",
        "  sales-ready (MQL)           4",
        "  assigned                    4",
        "    ae-dana                   2",
        "    queue unrouted            1",
        "    sdr-sam                   1",
        "  stages now                  lead 1, mql 2, recycled 1, sal 1",
        "  SLA clocks                  met 1, breached 1, running 2",
        "  recycled                    1",
        "  marketing's SLA clocks      met 0, breached 0, running 1",
    ]


@pytest.mark.parametrize(
    ("reaction", "view", "visible"),
    [
        ("accept", None, False),
        ("accept", {"stage": "mql"}, False),
        ("accept", {"stage": "sal"}, True),
        ("reject", {"stage": "sal"}, False),
        ("reject", {"stage": "recycled"}, True),
        ("ignore", {"stage": "mql", "sla_clocks": [{"state": "running"}]}, False),
        ("ignore", {"stage": "mql", "sla_clocks": [{"state": "warned",
                                                    "steps_taken": [{"step": "warn"}]}]}, False),
        ("ignore", {"stage": "mql", "sla_clocks": [{"state": "breached",
                                                    "steps_taken": [{"step": "breach"}]}]}, True),
        ("ignore", {"stage": "mql", "assignment": {"route": "fallback"}, "sla_clocks": []}, True),
    ],
)  # fmt: skip
def test_waiting_ends_once_the_rep_reaction_shows_in_the_lead_view(
    reaction: str, view: dict[str, Any] | None, visible: bool
) -> None:
    assert reaction_visible(reaction, view) is visible


def _timeline(activities: int) -> list[dict[str, Any]]:
    stage_change = {"kind": "stage_change", "to_stage": "lead"}
    return [stage_change, *({"kind": "activity", "event_id": f"e-{n}"} for n in range(activities))]


@pytest.mark.parametrize(
    ("view", "settled"),
    [
        (None, False),
        # the demo request is still on its way: stage lead, but one event short
        ({"stage": "lead", "timeline": _timeline(2)}, False),
        ({"stage": "lead", "timeline": _timeline(3)}, True),
        ({"stage": "mql", "timeline": _timeline(3)}, False),  # not assigned yet
        ({"stage": "mql", "timeline": _timeline(3), "assignment": {"rep_id": "ae-1"}}, True),
    ],
)
def test_a_lead_is_settled_once_all_its_events_show_and_an_mql_is_assigned(
    view: dict[str, Any] | None, settled: bool
) -> None:
    journey = _journey(1, None)
    journey.events = [{"id": f"sim-1-{n}"} for n in range(3)]
    assert lead_settled(journey, view) is settled


def _journey(number: int, view: dict[str, Any] | None) -> Journey:
    return Journey(number, PERSONAS[0], anonymous_id=f"sim-{number}", view=view)


def _lead(stage: str, assignment: dict[str, Any], *clocks: dict[str, Any]) -> dict[str, Any]:
    return {"stage": stage, "episode": 1, "assignment": assignment, "sla_clocks": list(clocks)}


def _clock(state: str, *steps: str) -> dict[str, Any]:
    return {
        "state": state,
        "steps_taken": [{"step": step, "at": NOW.isoformat()} for step in steps],
    }


def _marketing_clock(state: str, *steps: str) -> dict[str, Any]:
    return {**_clock(state, *steps), "kind": "marketing_acknowledgement"}


async def test_reps_activity_is_stamped_in_the_instances_clock_and_names_its_assignment() -> None:
    accelerated = datetime(2026, 12, 9, 3, 0, tzinfo=UTC)  # days ahead of the wall clock
    posted: list[dict[str, Any]] = []

    def instance(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok", "now": accelerated.isoformat()})
        posted.append(json.loads(request.content))
        return httpx.Response(202, json={})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(instance), base_url="http://test"
    ) as http:
        simulator = Simulator(http, SETTINGS)
        await simulator.report_sales_activity(
            "lk_1", {"rep_id": "ae-dana", "assignment_id": "as-1"}, "accepted"
        )

    [body] = posted
    assert body["occurred_at"] == "2026-12-09T03:00:00Z"
    assert (body["rep_id"], body["assignment_id"]) == ("ae-dana", "as-1")


async def test_an_event_is_sent_signed_again_while_the_instance_answers_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(simulate, "SEND_BACKOFF", BackoffPolicy(0.0, 0.0))
    tries: list[dict[str, str]] = []

    async def post(headers: dict[str, str]) -> int:
        tries.append(headers)
        return 503 if len(tries) < 3 else 202

    assert await simulate.send_signed(post, int, b"key", "msg_1", b"{}") == 202
    assert len(tries) == 3
    for headers in tries:  # each try carries a signature ingest accepts
        verify_standard_webhook(headers, b"{}", [b"key"], now=datetime.now(UTC))


async def test_an_instance_that_keeps_answering_503_gets_a_bounded_number_of_tries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(simulate, "SEND_BACKOFF", BackoffPolicy(0.0, 0.0))
    tries: list[dict[str, str]] = []

    async def post(headers: dict[str, str]) -> int:
        tries.append(headers)
        return 503

    assert await simulate.send_signed(post, int, b"key", "msg_1", b"{}") == 503
    assert len(tries) == simulate.SEND_ATTEMPTS
