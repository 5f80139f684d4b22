"""A known history as the events reporting consumes, with every expected number worked out.

Monday 2024-06-03, UTC; the default calendar (Mon-Fri 09:00-17:00 UTC) counts business time.
- A (hubspot, smb, DE, grade A): lead 08:30, MQL 08:50, assigned to rep-1 (east) 08:51,
  contacted 09:03, accepted 09:30 (SAL), qualified 11:00 (SQL).
- B (marketo, mid_market, US, grade B): lead 09:05, MQL 10:00, assigned to rep-2 (west) 10:01,
  warned 10:46, breached and escalated 11:01, reassigned to rep-1 11:03 (rep-2 excluded),
  contacted 11:30, rejected 12:00 (recycled); engagement 40 at 09:50, 55 on Tuesday 09:00
  (re-engaged after 21h); MQL again on Wednesday 09:00 (re-qualified after 45h).
- C (hubspot, smb, grade C): lead 09:20, never qualifies.
- D (hubspot, enterprise, grade A): lead 09:30, MQL 09:40, nobody eligible (rep-1 at capacity,
  rep-2 out of office): the fallback queue ``unassigned-leads`` at 09:41.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from leadrelay.app.definitions import load_definitions
from leadrelay.app.registry import business_time
from leadrelay.contracts.envelope import CloudEvent, new_event, stable_event_id
from leadrelay.contracts.events import (
    EventPayload,
    LeadAssigned,
    LeadReassignmentRequested,
    LeadRecycled,
    LeadScored,
    LeadStageChanged,
    SalesActivity,
    SlaBreached,
    SlaEscalated,
    SlaWarning,
    StageAttributes,
)
from leadrelay.contracts.schemas import schemas_dir
from leadrelay.store.unit_of_work import Store
from services.reporting.domain import RosterEntry, Window
from services.reporting.read_model import Reports

MONDAY = datetime(2024, 6, 3, tzinfo=UTC)
WINDOW = Window(MONDAY, MONDAY + timedelta(days=3))
ROSTER = {"rep-1": RosterEntry("east", 2), "rep-2": RosterEntry("west", 1)}
POLICY = "sdr-standard"
QUEUE = "unassigned-leads"


def reports_on(store: Store) -> Reports:
    """The reports on ``store`` in the default definitions' calendar, with ``ROSTER``."""
    return Reports(store, business_time(load_definitions()), ROSTER)


def at(hhmm: str, day: int = 0) -> datetime:
    hours, minutes = hhmm.split(":")
    return MONDAY + timedelta(days=day, hours=int(hours), minutes=int(minutes))


def _event(payload: EventPayload, key: str, *cause: str) -> CloudEvent:
    return new_event(payload.EVENT_TYPE, "/tests", payload, subject=key, id=stable_event_id(*cause))


def _stage(key: str, moves: list[tuple[str, str, datetime, int]], **attrs: Any) -> list[CloudEvent]:
    """One lead's transitions (from, to, at, episode); every one carries ``attrs``."""
    events = []
    for index, (from_stage, to_stage, when, episode) in enumerate(moves):
        rep = {"rep_id": "rep-1"} if to_stage in ("sal", "sql", "recycled") else {}
        data = LeadStageChanged.model_validate(
            {
                "lead_key": key, "from_stage": from_stage, "to_stage": to_stage, "at": when,
                "episode": episode, "cause_event_id": f"{key}-cause-{index}", "rule": "test",
                "attributes": StageAttributes.model_validate(attrs | rep),
            }
        )  # fmt: skip
        events.append(_event(data, key, "stage", key, str(index)))
    return events


def _assigned(
    assignment_id: str, key: str, rep: str, qualified: datetime, when: datetime, **extra: Any
) -> CloudEvent:
    template = json.loads((schemas_dir() / "examples/leadrelay.lead_assigned.v1.json").read_text())
    data = template["data"]
    data["context"]["lifecycle_history"] = [
        {"from_stage": "lead", "to_stage": "mql", "at": qualified.isoformat()}
    ]
    route = extra.pop("route", "round_robin")
    skipped = extra.pop("skipped", [])
    sla = extra.pop("sla", {})
    data.update(
        assignment_id=assignment_id, lead_key=key, rep_id=rep, route=route,
        assigned_at=when.isoformat(), sla=sla, **extra,
    )  # fmt: skip
    data["trace"]["skipped"] = [{"rep_id": r, "reason": why} for r, why in skipped]
    data["trace"]["chosen"] = {"rep_id": rep, "reason": f"{rep} had the lowest weighted load"}
    return _event(LeadAssigned.model_validate(data), key, "assigned", assignment_id)


def _sla(due: datetime, acceptance: datetime) -> dict[str, str]:
    return {"policy": POLICY, "first_touch_due": due.isoformat(),
            "acceptance_due": acceptance.isoformat()}  # fmt: skip


def _sales(key: str, rep: str, outcome: str, when: datetime, assignment: str) -> CloudEvent:
    data = SalesActivity(
        lead_key=key, rep_id=rep, outcome=outcome, occurred_at=when, assignment_id=assignment
    )
    return _event(data, key, "sales", key, outcome, when.isoformat())


def _clock_event(
    model: type[SlaWarning | SlaBreached | SlaEscalated], when: datetime
) -> CloudEvent:
    data = model(
        clock_id="a2-first_touch", lead_key="B", assignment_id="a2", rep_id="rep-2",
        clock="first_touch", policy=POLICY, deadline=at("11:01"), fired_at=when,
    )  # fmt: skip
    return _event(data, "B", model.EVENT_TYPE, when.isoformat())


def _score(key: str, engagement: float, when: datetime) -> CloudEvent:
    data = LeadScored(
        lead_key=key, stage="mql", fit_score=50.0, grade="B", engagement_score=engagement,
        breakdown=(), scorecard_version="v1", scored_at=when,
    )  # fmt: skip
    return _event(data, key, "scored", key, when.isoformat())


def known_history() -> list[CloudEvent]:
    """The events of the module docstring, in an order a real consumer could see them."""
    a_attrs = {"source": "hubspot", "segment": "smb", "country": "DE", "grade": "A"}
    b_attrs = {"source": "marketo", "segment": "mid_market", "country": "US", "grade": "B"}
    events = [
        *_stage("A", [("anonymous", "lead", at("08:30"), 0), ("lead", "mql", at("08:50"), 1),
                      ("mql", "sal", at("09:30"), 1), ("sal", "sql", at("11:00"), 1)], **a_attrs),
        *_stage("B", [("anonymous", "lead", at("09:05"), 0), ("lead", "mql", at("10:00"), 1),
                      ("mql", "recycled", at("12:00"), 1),
                      ("recycled", "mql", at("09:00", day=2), 2)], **b_attrs),
        *_stage("C", [("anonymous", "lead", at("09:20"), 0)], source="hubspot", grade="C"),
        *_stage("D", [("anonymous", "lead", at("09:30"), 0), ("lead", "mql", at("09:40"), 1)],
                source="hubspot", segment="enterprise", grade="A"),
        _assigned("a1", "A", "rep-1", at("08:50"), at("08:51"), team="east",
                  sla=_sla(at("10:00"), at("17:00"))),
        _sales("A", "rep-1", "contacted", at("09:03"), "a1"),
        _sales("A", "rep-1", "accepted", at("09:30"), "a1"),
        _sales("A", "rep-1", "qualified", at("11:00"), "a1"),
        _score("B", 40.0, at("09:50")),
        _assigned("a2", "B", "rep-2", at("10:00"), at("10:01"), team="west",
                  sla=_sla(at("11:01"), at("10:01", day=1))),
        _clock_event(SlaWarning, at("10:46")),
        _clock_event(SlaBreached, at("11:01")),
        _clock_event(SlaEscalated, at("11:01")),
        _event(LeadReassignmentRequested(
            lead_key="B", episode=1, attempt=2, exclude_rep_ids=("rep-2",), reason="sla_breached",
            requested_at=at("11:02"), previous_assignment_id="a2"), "B", "reassign", "a2"),
        _assigned("a3", "B", "rep-1", at("10:00"), at("11:03"), team="east", attempt=2,
                  skipped=[("rep-2", "excluded")], sla=_sla(at("12:03"), at("11:03", day=1))),
        _sales("B", "rep-1", "contacted", at("11:30"), "a3"),
        _sales("B", "rep-1", "rejected", at("12:00"), "a3"),
        _event(LeadRecycled(lead_key="B", reason="rejected_by_sales", detail="no budget",
                            rep_id="rep-1", assignment_id="a3", recycled_at=at("12:00")),
               "B", "recycled", "B"),
        _score("B", 55.0, at("09:00", day=1)),
        _assigned("q1", "D", QUEUE, at("09:40"), at("09:41"), route="fallback", team=None,
                  skipped=[("rep-1", "at_capacity"), ("rep-2", "out_of_office")]),
    ]  # fmt: skip
    return events
