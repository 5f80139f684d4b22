"""The SLA monitor service on a real SQLite store with an injected clock: no sleeps, no Kafka.

Each test drives the handlers as the consume loop would and the firing loop by hand, and reads
what the service queued in the outbox (what consumers will receive).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from leadrelay.contracts.topics import Topic
from leadrelay.durations import parse_duration
from services.sla_monitor.read_model import lead_view
from services.sla_monitor.tables import sla_clocks, sla_parked_activity

from .helpers import berlin, new_york
from .support import (
    Emitted,
    Harness,
    definitions,
    harness,
    lead_assigned,
    lead_recycled,
    marketing_activity,
    outbox_events,
    sales_activity,
    topic,
)

ASSIGNED = berlin(2026, 1, 13, 10, 0)  # a Tuesday; SDR first touch 1bh (warn 75%), 1bd accept


@pytest.fixture
async def sla(sqlite_url: str) -> AsyncIterator[Harness]:
    async for h in harness(sqlite_url, ASSIGNED):
        yield h


async def fire_at(h: Harness, at: datetime) -> list[Emitted]:
    """Move the clock to ``at``, run the firing loop, return the events it queued."""
    before = len(await outbox_events(h.store))
    h.clock.set(at)
    await h.monitor.firing.drain()
    return (await outbox_events(h.store))[before:]


def steps(events: list[Emitted]) -> list[tuple[str, str]]:
    """(event type without prefix and version, clock) of each event."""
    return [(e.type.split(".")[1], e.data.get("clock", "-")) for e in events]


def sample(h: Harness, name: str, **labels: str) -> float | None:
    return h.registry.get_sample_value(name, labels)


async def parked(h: Harness) -> int:
    async with h.store.engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(sla_parked_activity))
    return int(count or 0)


async def assign(
    h: Harness, assignment_id: str, rep_id: str, at: datetime, attempt: int = 1, episode: int = 1
) -> None:
    h.clock.set(at)
    await h.handle(lead_assigned(assignment_id, rep_id, at, attempt=attempt, episode=episode))


async def test_the_ladder_step_by_step_until_the_lead_is_recycled(sla: Harness) -> None:
    await assign(sla, "as-1", "rep-anna", ASSIGNED)
    assert await fire_at(sla, berlin(2026, 1, 13, 10, 44)) == []

    warning = await fire_at(sla, berlin(2026, 1, 13, 10, 45))
    assert steps(warning) == [("sla_warning", "first_touch")]
    assert warning[0].topic == topic(Topic.SLA_EVENTS)
    assert warning[0].subject == "lk_0123abcd"

    breach = await fire_at(sla, berlin(2026, 1, 13, 11, 0))
    assert steps(breach) == [("sla_breached", "first_touch"), ("sla_escalated", "first_touch")]
    assert breach[1].data["escalated_to"] == "mgr-maria"  # Anna's manager, from the roster
    assert await fire_at(sla, berlin(2026, 1, 13, 11, 0)) == []  # each step fires once

    reassign = await fire_at(sla, berlin(2026, 1, 13, 12, 0))
    assert steps(reassign) == [("lead_reassignment_requested", "-")]
    assert reassign[0].topic == topic(Topic.ASSIGNMENTS)
    assert reassign[0].data["exclude_rep_ids"] == ["rep-anna"]
    assert (reassign[0].data["attempt"], reassign[0].data["previous_assignment_id"]) == (2, "as-1")

    # hand-off assigns Bob; his ladder runs too, and Bob has no manager: the team is told
    await assign(sla, "as-2", "rep-bob", berlin(2026, 1, 13, 12, 0), attempt=2)
    assert steps(await fire_at(sla, berlin(2026, 1, 13, 12, 45))) == [
        ("sla_warning", "first_touch")
    ]
    escalation = await fire_at(sla, berlin(2026, 1, 13, 13, 0))
    assert escalation[1].data["escalated_to"] == "sdr-emea"
    second = await fire_at(sla, berlin(2026, 1, 13, 14, 0))
    assert second[0].data["exclude_rep_ids"] == ["rep-anna", "rep-bob"]
    assert second[0].data["attempt"] == 3

    # the third rep: reassignments are used up (max 2), so recycle follows the escalation
    await assign(sla, "as-3", "rep-carl", berlin(2026, 1, 13, 14, 0), attempt=3)
    await fire_at(sla, berlin(2026, 1, 13, 14, 45))
    assert steps(await fire_at(sla, berlin(2026, 1, 13, 15, 0))) == [
        ("sla_breached", "first_touch"),
        ("sla_escalated", "first_touch"),
    ]
    recycle = await fire_at(sla, berlin(2026, 1, 13, 16, 0))
    assert steps(recycle) == [("lead_recycled", "-")]
    assert recycle[0].topic == topic(Topic.RECYCLED)
    assert recycle[0].data["reason"] == "sla_breached"
    assert (recycle[0].data["rep_id"], recycle[0].data["assignment_id"]) == ("rep-carl", "as-3")

    assert await fire_at(sla, berlin(2026, 2, 13, 16, 0)) == []  # nothing is left to fire
    events = await outbox_events(sla.store)
    assert len({e.id for e in events}) == len(events)


async def test_first_contact_stops_first_touch_and_acceptance_stops_the_rest(
    sla: Harness,
) -> None:
    await assign(sla, "as-1", "rep-anna", ASSIGNED)
    await sla.handle(sales_activity("contact_attempted", "rep-anna", berlin(2026, 1, 13, 10, 30)))
    assert await fire_at(sla, berlin(2026, 1, 13, 17, 0)) == []

    # acceptance (1bd) is still running: it breaches on Wednesday 10:00
    assert steps(await fire_at(sla, berlin(2026, 1, 14, 10, 0))) == [
        ("sla_breached", "acceptance"),
        ("sla_escalated", "acceptance"),
    ]
    await sla.handle(sales_activity("accepted", "rep-anna", berlin(2026, 1, 14, 10, 30)))
    assert await fire_at(sla, berlin(2026, 3, 1, 0, 0)) == []


async def test_a_contact_after_the_breach_stops_the_rest_of_the_ladder(sla: Harness) -> None:
    await assign(sla, "as-1", "rep-anna", ASSIGNED)
    await fire_at(sla, berlin(2026, 1, 13, 11, 0))
    await sla.handle(sales_activity("contacted", "rep-anna", berlin(2026, 1, 13, 11, 30)))
    assert await fire_at(sla, berlin(2026, 1, 13, 12, 30)) == []  # no reassignment at 12:00


async def test_a_rejection_stops_the_clocks_and_leaves_the_announcement_to_scoring(
    sla: Harness,
) -> None:
    await assign(sla, "as-1", "rep-anna", ASSIGNED)
    rejected = sales_activity(
        "rejected", "rep-anna", berlin(2026, 1, 13, 10, 20), reason="student, no budget"
    )
    await sla.handle(rejected)

    assert await fire_at(sla, berlin(2026, 2, 1, 0, 0)) == []  # the clocks stopped


async def test_an_acceptance_read_before_its_assignment_applies_when_the_assignment_arrives(
    sla: Harness,
) -> None:
    # after downtime the monitor may read the two topics in either order
    accepted = sales_activity(
        "accepted", "rep-anna", berlin(2026, 1, 13, 10, 5), assignment_id="as-1"
    )
    await sla.handle(accepted)
    await sla.handle(accepted)  # a redelivery parks nothing twice
    await assign(sla, "as-1", "rep-anna", ASSIGNED)

    assert await fire_at(sla, berlin(2026, 3, 1, 0, 0)) == []  # nobody chases an accepted lead
    assert await parked(sla) == 0
    assert sample(sla, "leadrelay_sla_parked_activity_total", outcome="parked") == 1
    assert sample(sla, "leadrelay_sla_parked_activity_total", outcome="applied") == 1


async def test_a_new_reps_acceptance_read_before_the_reassignment_waits_for_it(
    sla: Harness,
) -> None:
    await assign(sla, "as-1", "rep-anna", ASSIGNED)
    # Bob accepted after a reassignment that the monitor has not read yet; no assignment id
    await sla.handle(sales_activity("accepted", "rep-bob", berlin(2026, 1, 13, 12, 5)))
    assert steps(await fire_at(sla, berlin(2026, 1, 13, 10, 45))) == [
        ("sla_warning", "first_touch")  # Anna's clocks were not stopped by Bob's acceptance
    ]
    await assign(sla, "as-2", "rep-bob", berlin(2026, 1, 13, 12, 0), attempt=2)

    assert await fire_at(sla, berlin(2026, 3, 1, 0, 0)) == []  # Bob's clocks completed
    assert await parked(sla) == 0


async def test_a_returning_reps_acceptance_read_before_her_new_assignment_waits_for_it(
    sla: Harness,
) -> None:
    await assign(sla, "as-1", "rep-anna", ASSIGNED)
    await assign(sla, "as-2", "rep-bob", berlin(2026, 1, 13, 10, 30), attempt=2)
    # a new episode gives the lead back to Anna (as-3); her acceptance is read before it
    await sla.handle(sales_activity("accepted", "rep-anna", berlin(2026, 1, 20, 10, 5)))
    await assign(sla, "as-3", "rep-anna", berlin(2026, 1, 20, 10, 0), episode=2)

    assert await fire_at(sla, berlin(2026, 3, 1, 0, 0)) == []  # her new clocks completed
    assert await parked(sla) == 0


async def test_a_reps_verdict_from_before_the_assignment_read_after_it_changes_nothing(
    sla: Harness,
) -> None:
    await assign(sla, "as-1", "rep-anna", ASSIGNED)
    await sla.handle(sales_activity("rejected", "rep-anna", berlin(2026, 1, 6, 9, 0)))

    assert steps(await fire_at(sla, berlin(2026, 1, 13, 10, 45))) == [
        ("sla_warning", "first_touch")
    ]


async def test_a_reps_earlier_verdict_on_the_person_does_not_apply_to_a_new_assignment(
    sla: Harness,
) -> None:
    # last week, before LeadRelay assigned anything, Anna rejected this contact in the CRM
    sla.clock.set(berlin(2026, 1, 6, 9, 0))
    await sla.handle(sales_activity("rejected", "rep-anna", berlin(2026, 1, 6, 9, 0)))
    await assign(sla, "as-1", "rep-anna", ASSIGNED)

    assert steps(await fire_at(sla, berlin(2026, 1, 13, 10, 45))) == [
        ("sla_warning", "first_touch")
    ]
    assert await parked(sla) == 1  # left to expire


@pytest.mark.parametrize("assignment_first", [True, False], ids=["assigned-first", "parked"])
async def test_activity_naming_its_assignment_applies_whatever_its_timestamp(
    sla: Harness, assignment_first: bool
) -> None:
    # the CRM's clock is an hour behind ours: by time alone the acceptance precedes the lead
    accepted = sales_activity(
        "accepted", "rep-anna", berlin(2026, 1, 13, 9, 0), assignment_id="as-1"
    )
    if assignment_first:
        await assign(sla, "as-1", "rep-anna", ASSIGNED)
    await sla.handle(accepted)
    if not assignment_first:
        await assign(sla, "as-1", "rep-anna", ASSIGNED)

    assert await fire_at(sla, berlin(2026, 3, 1, 0, 0)) == []
    assert await parked(sla) == 0


@pytest.mark.parametrize(("skew", "stops"), [("5m", False), ("2h", True)])
async def test_activity_without_an_assignment_is_matched_within_the_configured_clock_skew(
    sqlite_url: str, skew: str, stops: bool
) -> None:
    shipped = definitions()
    sla_section = shipped.sla.model_copy(update={"clock_skew": parse_duration(skew)})
    async for h in harness(
        sqlite_url, ASSIGNED, defs=shipped.model_copy(update={"sla": sla_section})
    ):
        await assign(h, "as-1", "rep-anna", ASSIGNED)
        await h.handle(sales_activity("contacted", "rep-anna", berlin(2026, 1, 13, 9, 0)))

        fired = steps(await fire_at(h, berlin(2026, 1, 13, 10, 45)))
        assert fired == ([] if stops else [("sla_warning", "first_touch")])


def test_the_clock_skew_is_real_time_not_business_time() -> None:
    with pytest.raises(ValidationError, match="clock_skew is real time"):
        definitions().sla.model_validate({**definitions().sla.model_dump(), "clock_skew": "1bh"})


async def test_a_recycle_announced_by_scoring_ends_the_leads_clocks(sla: Harness) -> None:
    await assign(sla, "as-1", "rep-anna", ASSIGNED)
    await sla.handle(lead_recycled(berlin(2026, 1, 13, 10, 20), reason="rejected_by_sales"))

    # nothing for sales (no warning, no breach, no ladder); marketing never acknowledged it
    fired = steps(await fire_at(sla, berlin(2026, 3, 1, 0, 0)))
    assert fired == [
        ("sla_breached", "marketing_acknowledgement"),
        ("sla_escalated", "marketing_acknowledgement"),
    ]


async def test_the_maps_acknowledgement_meets_marketings_clock(sla: Harness) -> None:
    recycled = berlin(2026, 1, 13, 10, 20)
    await sla.handle(lead_recycled(recycled, reason="rejected_by_sales"))
    await sla.handle(marketing_activity(berlin(2026, 1, 14, 9, 0)))

    assert await fire_at(sla, berlin(2026, 3, 1, 0, 0)) == []


async def test_a_new_assignment_does_not_end_marketings_clock(sla: Harness) -> None:
    await sla.handle(lead_recycled(berlin(2026, 1, 13, 10, 20), reason="rejected_by_sales"))
    await assign(sla, "as-2", "rep-anna", berlin(2026, 1, 13, 11, 0))
    await sla.handle(sales_activity("accepted", "rep-anna", berlin(2026, 1, 13, 11, 5)))

    fired = steps(await fire_at(sla, berlin(2026, 3, 1, 0, 0)))
    assert fired == [
        ("sla_breached", "marketing_acknowledgement"),
        ("sla_escalated", "marketing_acknowledgement"),
    ]


async def test_parked_activity_waits_for_its_own_assignment_and_expires_after_a_week(
    sla: Harness,
) -> None:
    sla.clock.set(berlin(2026, 1, 13, 10, 5))
    await sla.handle(
        sales_activity("contacted", "rep-bob", berlin(2026, 1, 13, 10, 5), assignment_id="as-9")
    )
    await assign(sla, "as-1", "rep-anna", ASSIGNED)  # another assignment: not applied to it
    assert steps(await fire_at(sla, berlin(2026, 1, 13, 10, 45))) == [
        ("sla_warning", "first_touch")
    ]
    assert await parked(sla) == 1

    sla.clock.set(berlin(2026, 1, 20, 10, 4))
    assert await sla.monitor.expiry.sweep() == 0  # not a week yet
    sla.clock.set(berlin(2026, 1, 20, 10, 6))
    assert await sla.monitor.expiry.sweep() == 1
    assert await parked(sla) == 0
    assert sample(sla, "leadrelay_sla_parked_activity_total", outcome="expired") == 1


async def test_a_redelivered_assignment_starts_no_second_set_of_clocks(sla: Harness) -> None:
    await assign(sla, "as-1", "rep-anna", ASSIGNED)
    replay = lead_assigned("as-1", "rep-anna", ASSIGNED)
    await sla.handle(replay.model_copy(update={"id": "another-delivery-id"}))
    async with sla.store.engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(sla_clocks))
    assert count == 2
    assert steps(await fire_at(sla, berlin(2026, 1, 13, 10, 45))) == [
        ("sla_warning", "first_touch")
    ]


async def test_a_new_assignment_ends_the_clocks_of_the_previous_one(sla: Harness) -> None:
    await assign(sla, "as-1", "rep-anna", ASSIGNED)
    await assign(sla, "as-2", "rep-bob", berlin(2026, 1, 13, 10, 10), attempt=2)
    breaches = await fire_at(sla, berlin(2026, 1, 13, 11, 10))
    assert {e.data["rep_id"] for e in breaches} == {"rep-bob"}


async def test_deadlines_count_in_the_reps_own_calendar(sla: Harness) -> None:
    friday_evening = new_york(2026, 1, 16, 18, 0)  # Nina works 08:00-12:00 New York time
    await assign(sla, "as-ny", "rep-nina", friday_evening)
    assert await fire_at(sla, new_york(2026, 1, 19, 8, 44)) == []  # not over the weekend
    assert steps(await fire_at(sla, new_york(2026, 1, 19, 8, 45))) == [
        ("sla_warning", "first_touch")
    ]
    events = await fire_at(sla, new_york(2026, 1, 19, 9, 0))
    assert events[0].type == "leadrelay.sla_breached.v1"
    assert events[0].data["deadline"] == "2026-01-19T14:00:00Z"  # Monday 09:00 New York


async def test_an_unknown_rep_counts_in_the_policys_calendar(sla: Harness) -> None:
    saturday = berlin(2026, 1, 17, 12, 0)
    await assign(sla, "as-x", "rep-not-in-roster", saturday)
    events = await fire_at(sla, berlin(2026, 1, 19, 12, 0))  # default calendar: UTC 09-17
    assert events[0].data["deadline"] == "2026-01-19T10:00:00Z"


async def test_the_lead_view_shows_each_clock_with_deadline_state_and_steps(
    sla: Harness,
) -> None:
    await assign(sla, "as-1", "rep-anna", ASSIGNED)
    await fire_at(sla, berlin(2026, 1, 13, 10, 50))
    await fire_at(sla, berlin(2026, 1, 13, 11, 0))
    async with sla.store.engine.connect() as connection:
        view = await lead_view(connection, "lk_0123abcd")
    assert view is not None
    first_touch, acceptance = view["sla_clocks"]
    assert first_touch["kind"] == "first_touch"
    assert first_touch["due_at"] == "2026-01-13T10:00:00+00:00"
    assert first_touch["state"] == "breached"
    assert [s["step"] for s in first_touch["steps_taken"]] == ["warn", "breach", "escalate"]
    assert first_touch["next_step_at"] == "2026-01-13T11:00:00+00:00"
    assert (acceptance["kind"], acceptance["state"]) == ("acceptance", "running")


async def test_metrics_report_breaches_first_touch_time_and_firing_lag(sla: Harness) -> None:
    await assign(sla, "as-1", "rep-anna", ASSIGNED)
    await fire_at(sla, berlin(2026, 1, 13, 11, 5))  # five minutes late
    await sla.handle(sales_activity("contacted", "rep-anna", berlin(2026, 1, 13, 11, 30)))
    await sla.monitor.firing.refresh_open_clocks()

    assert (
        sample(sla, "leadrelay_sla_breaches_total", policy="sdr", team="sdr-emea", rep="rep-anna")
        == 1
    )
    assert (
        sample(sla, "leadrelay_sla_time_to_first_touch_seconds_sum", role="sdr", team="sdr-emea")
        == 90 * 60
    )
    assert sample(sla, "leadrelay_sla_firing_lag_seconds_sum") == 2 * 5 * 60  # breach, escalation
    assert sample(sla, "leadrelay_sla_open_clocks", state="running") == 1  # acceptance


async def test_the_rep_snapshot_in_the_assignment_decides_calendar_and_manager(
    sla: Harness,
) -> None:
    """No roster read: the calendar and manager hand-off sent are the ones that count."""
    snapshot = {
        "time_zone": "America/New_York",
        "working_hours": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        "team": "sdr-emea",
        "manager": "mgr-from-api",
    }
    sla.clock.set(ASSIGNED)  # 04:00 in New York: due at 10:00 there
    await sla.handle(lead_assigned("as-1", "rep-anna", ASSIGNED, rep=snapshot))
    assert steps(await fire_at(sla, new_york(2026, 1, 13, 9, 59))) == [
        ("sla_warning", "first_touch")
    ]
    escalation = await fire_at(sla, new_york(2026, 1, 13, 10, 0))
    assert steps(escalation) == [("sla_breached", "first_touch"), ("sla_escalated", "first_touch")]
    assert escalation[1].data["escalated_to"] == "mgr-from-api"
