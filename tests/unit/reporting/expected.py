"""The numbers of ``history.known_history``, worked out by hand (see its docstring)."""

from __future__ import annotations

from typing import Any

NO_TIME = {"median_seconds_in_stage": None, "p90_seconds_in_stage": None}


def _stage(
    stage: str, entered: int, converted: int, conversion: float | None, **rest: Any
) -> dict[str, Any]:
    row = {"all": "all", "stage": stage, "entered": entered, "converted": converted,
           "conversion": conversion, "recycled": 0, "disqualified": 0} | NO_TIME  # fmt: skip
    return row | rest


FUNNEL = [
    # lead: A 20 min, B 55 min, D 10 min in the stage; C still there
    _stage("lead", 4, 3, 0.75, median_seconds_in_stage=1200.0, p90_seconds_in_stage=3300.0),
    # mql: A moved on after 40 min, B recycled after 2 h; D and B's second MQL still there
    _stage("mql", 4, 1, 0.25, recycled=1, median_seconds_in_stage=2400.0,
           p90_seconds_in_stage=7200.0),
    _stage("sal", 1, 1, 1.0, median_seconds_in_stage=5400.0, p90_seconds_in_stage=5400.0),
    _stage("sql", 1, 0, 0.0),
    _stage("opportunity", 0, 0, None),
    _stage("customer", 0, 0, None),
    _stage("recycled", 1, 1, 1.0, median_seconds_in_stage=162000.0,
           p90_seconds_in_stage=162000.0),
    _stage("disqualified", 0, 0, None),
]  # fmt: skip

SPEED = {
    "all": "all", "leads": 3, "touched": 2,
    # to assignment: one minute each; A's minute was before opening time (0 business seconds)
    "assignment_p50_seconds": 60.0, "assignment_p50_business_seconds": 60.0,
    "assignment_p90_seconds": 60.0, "assignment_p90_business_seconds": 60.0,
    "assignment_p95_seconds": 60.0, "assignment_p95_business_seconds": 60.0,
    # to first touch: A 13 min (3 of them after 09:00), B 90 min; D never
    "first_touch_p50_seconds": 780.0, "first_touch_p50_business_seconds": 180.0,
    "first_touch_p90_seconds": 5400.0, "first_touch_p90_business_seconds": 5400.0,
    "first_touch_p95_seconds": 5400.0, "first_touch_p95_business_seconds": 5400.0,
    "touched_within_5m": 0.0, "touched_within_1h": 0.3333,
}  # fmt: skip

SLA_BY_POLICY = [
    {"policy": "sdr-standard", "clocks": 6, "met": 3, "breached": 1, "open": 2,
     "compliance": 0.75, "warnings": 1, "escalations": 1, "reassignments": 1, "recycles": 1,
     "at_risk": 0, "forecast_precision": None, "forecast_recall": 0.0},
]  # fmt: skip
SLA_BY_REP = [
    {"rep": "rep-1", "clocks": 4, "met": 3, "breached": 0, "open": 1, "compliance": 1.0,
     "warnings": 0, "escalations": 0, "reassignments": 0, "recycles": 1,
     "at_risk": 0, "forecast_precision": None, "forecast_recall": None},
    {"rep": "rep-2", "clocks": 2, "met": 0, "breached": 1, "open": 1, "compliance": 0.0,
     "warnings": 1, "escalations": 1, "reassignments": 1, "recycles": 0,
     "at_risk": 0, "forecast_precision": None, "forecast_recall": 0.0},
]  # fmt: skip

RECYCLED = [
    {"reason": "rejected_by_sales", "recycled": 1,
     "re_engaged": 1, "re_engaged_rate": 1.0, "re_engaged_median_seconds": 75600.0,
     "re_engaged_p90_seconds": 75600.0,
     "re_qualified": 1, "re_qualified_rate": 1.0, "re_qualified_median_seconds": 162000.0,
     "re_qualified_p90_seconds": 162000.0},
]  # fmt: skip

ROUTING = [
    {"kind": "rep", "rep": "rep-1", "assignments": 2, "share": 0.6667, "weighted_share": 0.6667},
    {"kind": "rep", "rep": "rep-2", "assignments": 1, "share": 0.3333, "weighted_share": 0.3333},
    # D waits from Monday 09:41 to the window's end, Thursday 00:00
    {"kind": "queue", "queue": "unassigned-leads", "depth": 1, "oldest_age_seconds": 224340.0},
    {"kind": "skip_reason", "reason": "at_capacity", "count": 1},
    {"kind": "skip_reason", "reason": "excluded", "count": 1},
    {"kind": "skip_reason", "reason": "out_of_office", "count": 1},
]  # fmt: skip
