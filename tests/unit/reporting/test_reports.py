"""The five reports on a known history (pure: events become facts, facts become rows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from leadrelay.app.definitions import load_definitions
from leadrelay.calendar import business_time_between
from leadrelay.contracts.schemas import validate_event
from services.reporting.domain import (
    History,
    Report,
    UnknownDimension,
    Window,
    daily_compliance,
    first_touch_distribution,
    quantile,
)
from services.reporting.messages import dump_fact, fact_of, load_fact
from services.reporting.read_model import Reports
from tests.unit.reporting import expected
from tests.unit.reporting.history import MONDAY, ROSTER, WINDOW, known_history


def history_of_events() -> History:
    return History.from_facts(fact_of(event) for event in known_history())


def report(name: str, by: str | None = None, window: Window = WINDOW) -> Report:
    calendar = load_definitions().sla.calendar()
    reports = Reports(None, partial(business_time_between, calendar), ROSTER)  # type: ignore[arg-type]
    return reports.compute(name, history_of_events(), window, by)


def test_the_known_history_is_valid_contract_events() -> None:
    for event in known_history():
        validate_event(event)


def test_funnel_counts_entries_conversions_exits_and_time_in_stage() -> None:
    assert list(report("funnel").rows) == expected.FUNNEL


def test_funnel_by_source_uses_the_original_source() -> None:
    rows = {(r["source"], r["stage"]): r for r in report("funnel", "source").rows}
    assert (rows["hubspot", "lead"]["entered"], rows["marketo", "lead"]["entered"]) == (3, 1)
    assert rows["hubspot", "lead"]["median_seconds_in_stage"] == 600.0
    assert (rows["marketo", "mql"]["entered"], rows["marketo", "mql"]["recycled"]) == (2, 1)


def test_funnel_by_rep_groups_by_who_had_the_lead() -> None:
    rows = {(r["rep"], r["stage"]): r["entered"] for r in report("funnel", "rep").rows}
    assert rows["rep-1", "sal"] == 1
    assert rows["(none)", "lead"] == 4


def test_speed_to_lead_in_wall_and_business_time() -> None:
    assert list(report("speed-to-lead").rows) == [expected.SPEED]
    by_rep = {r["rep"]: r for r in report("speed-to-lead", "rep").rows}
    assert (by_rep["rep-1"]["leads"], by_rep["rep-1"]["touched_within_1h"]) == (2, 0.5)
    assert by_rep["rep-1"]["assignment_p50_business_seconds"] == 0.0
    assert by_rep["unassigned-leads"]["first_touch_p50_seconds"] is None


def test_sla_clocks_met_breached_open_and_the_ladder() -> None:
    assert list(report("sla", "policy").rows) == expected.SLA_BY_POLICY
    assert list(report("sla", "rep").rows) == expected.SLA_BY_REP


def test_recycled_re_engagement_and_re_qualification() -> None:
    assert list(report("recycled", "reason").rows) == expected.RECYCLED


def test_routing_shares_queues_and_skip_reasons() -> None:
    assert list(report("routing").rows) == expected.ROUTING
    assert list(report("routing", "all").rows) == expected.ROUTING
    by_team = [r for r in report("routing", "team").rows if r["kind"] == "team"]
    assert [(r["team"], r["assignments"], r["weighted_share"]) for r in by_team] == [
        ("east", 2, 0.6667), ("west", 1, 0.3333)
    ]  # fmt: skip


def test_a_window_counts_only_what_happened_inside_it() -> None:
    monday_morning = Window(MONDAY, MONDAY + timedelta(hours=10))
    rows = {r["stage"]: r["entered"] for r in report("funnel", window=monday_morning).rows}
    assert (rows["lead"], rows["mql"], rows["sal"]) == (4, 2, 1)


def test_an_unknown_dimension_is_refused_by_name() -> None:
    with pytest.raises(UnknownDimension, match="source"):
        report("funnel", "colour")


def test_nearest_rank_quantiles() -> None:
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.9) == 4.0
    assert quantile([], 0.5) is None


def test_a_window_must_be_aware_and_forward() -> None:
    with pytest.raises(ValueError, match="after"):
        Window(MONDAY, MONDAY)
    with pytest.raises(ValueError, match="aware"):
        Window(datetime(2024, 1, 1), datetime(2024, 1, 2, tzinfo=UTC))


def test_facts_survive_their_json_form() -> None:
    for event in known_history():
        fact = fact_of(event)
        assert fact is not None
        assert load_fact(type(fact).__name__, dump_fact(fact)) == fact


def test_daily_compliance_is_per_utc_day_of_the_window() -> None:
    points = daily_compliance(history_of_events(), WINDOW, days=4)
    assert points == [("2024-06-02", None), ("2024-06-03", 0.75), ("2024-06-04", None),
                      ("2024-06-05", None)]  # fmt: skip


def test_first_touch_distribution_buckets_every_episode() -> None:
    assert first_touch_distribution(history_of_events(), WINDOW) == [
        ("under 5 min", 0), ("5-60 min", 1), ("1-4 h", 1), ("4-24 h", 0), ("over 1 day", 0),
        ("not touched", 1),
    ]  # fmt: skip
