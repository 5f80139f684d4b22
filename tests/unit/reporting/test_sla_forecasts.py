"""How often the SLA monitor's at-risk forecasts were right, in the SLA report and its gauges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from services.reporting.domain import (
    Assignment,
    History,
    Report,
    SlaSignal,
    Touch,
    Window,
    sla,
)
from services.reporting.metrics import ReportingMetrics

T0 = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)  # a Monday
WINDOW = Window(T0, T0 + timedelta(days=7))


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def assignment(lead: str) -> Assignment:
    """First touch due an hour after assignment; no acceptance clock."""
    return Assignment(
        f"as-{lead}", lead, 1, 1, "rep-1", "emea", "round_robin", at(0), at(0),
        policy="sdr", first_touch_due=at(60),
    )  # fmt: skip


def signal(kind: str, lead: str, minutes: int) -> SlaSignal:
    return SlaSignal(f"{kind}-{lead}", kind, lead, f"as-{lead}", "first_touch", at(minutes))


def touch(lead: str, minutes: int) -> Touch:
    return Touch(f"t-{lead}", lead, "rep-1", "contacted", at(minutes), f"as-{lead}")


def history() -> History:
    """Five clocks: A forecast at risk and breached (a hit), B forecast and met all the same (a
    false alarm), C breached unforecast (a miss), D met unforecast, E forecast and handed on
    before its deadline (neither met nor breached: it counts in neither figure)."""
    return History.of(
        assignments=[assignment(lead) for lead in "ABCDE"],
        signals=[
            signal("at_risk", "A", 10),
            signal("breached", "A", 60),
            signal("at_risk", "B", 10),
            signal("breached", "C", 60),
            signal("at_risk", "E", 10),
            signal("reassignment_requested", "E", 10),
        ],
        touches=[touch("B", 50), touch("D", 20)],
    )


def test_precision_and_recall_of_the_forecasts_against_what_happened() -> None:
    [row] = sla(history(), WINDOW, "policy").rows
    assert (row["met"], row["breached"], row["open"], row["at_risk"]) == (2, 2, 1, 3)
    assert row["forecast_precision"] == 0.5  # of A and B forecast, A breached
    assert row["forecast_recall"] == 0.5  # of A and C breached, A was forecast


def test_the_gauges_show_the_report_s_precision_and_recall() -> None:
    registry = CollectorRegistry()
    metrics = ReportingMetrics.create(registry)
    history_ = history()
    metrics.show(
        Report("funnel", WINDOW, "all", ()),
        Report("speed-to-lead", WINDOW, "all", ()),
        sla(history_, WINDOW, "policy"),
    )
    labels = {"policy": "sdr"}
    assert (
        registry.get_sample_value("leadrelay_reporting_sla_forecast_precision_ratio", labels) == 0.5
    )
    assert registry.get_sample_value("leadrelay_reporting_sla_forecast_recall_ratio", labels) == 0.5
