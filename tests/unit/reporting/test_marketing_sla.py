"""Marketing's row in the SLA report: one clock per recycle, met by the MAP's acknowledgement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.reporting.domain import (
    Acknowledgement,
    History,
    Recycle,
    SlaSignal,
    Window,
    sla,
)

T0 = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)  # a Monday
WINDOW = Window(T0, T0 + timedelta(days=14))


def recycled(event_id: str, lead_key: str, hours: int) -> Recycle:
    return Recycle(event_id, lead_key, "rejected_by_sales", "rep-1", "as-" + lead_key, at(hours))


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def history() -> History:
    """Three recycles: lk-a acknowledged (met), lk-b warned then breached, lk-c waiting (its
    enrolment came before the recycle, so it does not count); one recycle outside the window."""
    return History.of(
        recycles=[
            recycled("rc-a", "lk-a", 1),
            recycled("rc-b", "lk-b", 2),
            recycled("rc-c", "lk-c", 3),
            recycled("rc-old", "lk-d", -48),
        ],
        acknowledgements=[
            Acknowledgement("ack-a", "lk-a", "nurture_enrolled", at(5)),
            Acknowledgement("ack-c", "lk-c", "nurture_enrolled", at(2)),
        ],
        signals=[
            SlaSignal("w-b", "warning", "lk-b", "rc-b", "marketing_acknowledgement", at(30)),
            SlaSignal("b-b", "breached", "lk-b", "rc-b", "marketing_acknowledgement", at(40)),
        ],
    )


def test_marketing_has_its_own_policy_row_with_the_same_columns() -> None:
    rows = sla(history(), WINDOW, "policy", marketing=True).rows
    assert list(rows) == [
        {"policy": "marketing", "clocks": 3, "met": 1, "breached": 1, "open": 1,
         "compliance": 0.5, "warnings": 1, "escalations": 0, "reassignments": 0, "recycles": 0,
         "at_risk": 0, "forecast_precision": None, "forecast_recall": None},
    ]  # fmt: skip


def test_without_a_marketing_policy_there_is_no_marketing_row() -> None:
    assert sla(history(), WINDOW, "policy").rows == ()


def test_a_second_recycle_needs_its_own_acknowledgement() -> None:
    again = History.of(
        recycles=[recycled("rc-1", "lk-a", 1), recycled("rc-2", "lk-a", 10)],
        acknowledgements=[Acknowledgement("ack-1", "lk-a", "nurture_enrolled", at(5))],
    )
    (row,) = sla(again, WINDOW, "policy", marketing=True).rows
    assert (row["met"], row["open"]) == (1, 1)
