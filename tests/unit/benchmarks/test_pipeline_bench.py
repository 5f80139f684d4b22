"""``benchmarks.pipeline_bench`` without servers: what it sends is what ingest accepts, and the
roster it runs on is the shipped one without caps, so a run measures assignments, not refusals.

A 422 for every form would still print a table (of nothing assigned); these keep the benchmark
honest as the contracts and the definitions move.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.pipeline_bench import Result, bench_definitions, forms
from leadrelay.app.definitions import load_definitions
from leadrelay.identity import lead_key
from services.handoff.domain.config import Capacity
from services.ingest.domain.mapping.cloudevents import map_event
from services.ingest.domain.mapping.common import IngestContext

SECRET = "pipeline-bench-test-secret"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_ingest_accepts_every_form_under_the_lead_key_the_benchmark_waits_for() -> None:
    sent = forms("run1", 40)

    for form in sent:
        event = map_event(json.loads(form.body), IngestContext(lead_key_secret=SECRET, now=NOW))
        assert event.type == "leadrelay.form_submitted.v1"
        assert event.data["lead_key"] == lead_key(form.email, SECRET)
        assert event.data["form_id"] == "demo-request"
    assert len({form.webhook_id for form in sent}) == len(sent)
    assert {form.email for form in sent}.isdisjoint(form.email for form in forms("run2", 40))


def test_the_benchmark_roster_is_the_shipped_one_without_capacity_caps(tmp_path: Path) -> None:
    shipped = load_definitions()
    benched = load_definitions(bench_definitions(tmp_path))

    assert [rep.id for rep in benched.roster.reps] == [rep.id for rep in shipped.roster.reps]
    assert {rep.capacity for rep in benched.roster.reps} == {Capacity()}
    assert benched.scorecard == shipped.scorecard
    assert benched.routing == shipped.routing


def test_a_lead_never_assigned_makes_the_high_percentiles_lost_not_smaller() -> None:
    latencies = [10.0, 20.0, 30.0, float("inf")]
    result = Result("up", "LeadRelay", 50.0, 4, 4, 3, 1.0, latencies, [5.0] * 4)

    assert result.percentile(0.5) == 20.0
    assert result.percentile(0.99) == float("inf")
