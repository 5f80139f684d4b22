"""The hand-off handlers on a real SQLite store: one assignment per episode attempt, with the
whole context, the trace and SLA deadlines in the rep's own calendar; reassignment and fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from leadrelay.contracts.envelope import CloudEvent, new_event, stable_event_id
from leadrelay.contracts.schemas import validate_event
from services.handoff.domain import Account, Rep
from services.handoff.messages import SOURCE
from services.handoff.tables import assignments, rep_load
from tests.unit.handoff.builders import make_rep
from tests.unit.handoff.support import (
    NOW,
    HandoffHarness,
    definitions_with,
    handoff_harness,
    reassignment,
    sales_ready,
    sales_ready_data,
)
from tests.unit.sla_monitor.support import sales_activity

OFFICE_HOURS = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
QUEUE = "unassigned-leads"


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def harness_for(
    tmp: Path, reps: list[Rep], accounts: tuple[Account, ...] = (), **routing: Any
) -> AbstractAsyncContextManager[HandoffHarness]:
    return handoff_harness(tmp, definitions_with(reps, accounts, **routing))


@pytest.fixture
async def two_sdrs(tmp: Path) -> AsyncIterator[HandoffHarness]:
    """Two SDRs of equal weight working around the clock: ``sdr-a`` wins ties."""
    async with harness_for(tmp, [make_rep("sdr-a"), make_rep("sdr-b")]) as harness:
        yield harness


async def test_a_sales_ready_lead_gets_one_assignment_with_context_trace_and_rep_calendar_sla(
    tmp: Path,
) -> None:
    tokyo = make_rep("sdr-tokyo", time_zone="Asia/Tokyo", working_hours=OFFICE_HOURS)
    away = make_rep("sdr-away", active=False)
    async with harness_for(tmp, [tokyo, away], respect_working_hours=False) as handoff:
        await handoff.deliver(sales_ready("lk_ada"))

        [event] = await handoff.assigned()
        validate_event(event)
        data = event.data
        assert (event.id, event.subject, event.source) == (
            stable_event_id("assigned", "lk_ada", "1", "1"),
            "lk_ada",
            SOURCE,
        )
        assert (data["rep_id"], data["role"], data["route"], data["team"]) == (
            "sdr-tokyo",
            "sdr",
            "round_robin",
            "core",
        )
        assert (data["episode"], data["attempt"]) == (1, 1)
        expected_context = {
            key: value
            for key, value in sales_ready_data("lk_ada").items()
            if key not in {"lead_key", "episode", "qualified_by", "qualified_at"}
        }
        assert data["context"] == expected_context
        trace = data["trace"]
        assert [step["step"] for step in trace["steps"]] == [
            "account_match",
            "rule_match",
            "eligibility",
            "round_robin",
        ]
        assert trace["skipped"] == [{"rep_id": "sdr-away", "reason": "inactive"}]
        assert trace["chosen"]["rep_id"] == "sdr-tokyo"
        # Wednesday 12:00 UTC is 21:00 in Tokyo: the SDR policy's 1 business hour runs from
        # Thursday's 09:00 JST opening, the business day ends at Thursday's close (17:00 JST).
        assert data["sla"] == {
            "policy": "sdr",
            "first_touch_due": "2025-06-05T01:00:00Z",
            "acceptance_due": "2025-06-05T08:00:00Z",
        }
        view = await handoff.view("lk_ada")
        assert view is not None
        assert view["assignment"]["rep_id"] == "sdr-tokyo"
        assert view["assignment"]["trace"] == trace
        assert view["assignment"]["sla"] == data["sla"]
        assert (
            handoff.metric("leadrelay_handoff_assignments_total", route="round_robin", role="sdr")
            == 1
        )
        assert handoff.metric("leadrelay_handoff_reps_skipped_total", reason="inactive") == 1


async def test_a_sales_ready_episode_replayed_under_a_new_event_id_is_not_assigned_again(
    two_sdrs: HandoffHarness,
) -> None:
    await two_sdrs.deliver(sales_ready("lk_ada"))
    await two_sdrs.deliver(sales_ready("lk_ada"))  # same id: the inbox
    await two_sdrs.apply(sales_ready("lk_ada", event_id="replayed-by-scoring"))  # the handler

    assert [e.data["rep_id"] for e in await two_sdrs.assigned()] == ["sdr-a"]


async def test_an_older_episode_arriving_late_is_not_assigned(two_sdrs: HandoffHarness) -> None:
    await two_sdrs.deliver(sales_ready("lk_ada", episode=2))
    await two_sdrs.deliver(sales_ready("lk_ada", episode=1))

    assert [e.data["episode"] for e in await two_sdrs.assigned()] == [2]


async def test_a_new_episode_is_assigned_afresh(two_sdrs: HandoffHarness) -> None:
    await two_sdrs.deliver(sales_ready("lk_ada", episode=1), sales_ready("lk_ada", episode=2))

    assert [(e.data["episode"], e.data["attempt"]) for e in await two_sdrs.assigned()] == [
        (1, 1),
        (2, 1),
    ]


async def test_reassignment_picks_a_rep_who_has_not_had_the_lead_in_this_episode(
    two_sdrs: HandoffHarness,
) -> None:
    await two_sdrs.deliver(sales_ready("lk_ada"))
    await two_sdrs.deliver(reassignment("lk_ada", attempt=2, exclude=["sdr-a"]))
    # The monitor forgets to exclude anyone: both reps already had it, so it is queued.
    await two_sdrs.deliver(reassignment("lk_ada", attempt=3))

    first, second, third = (e.data for e in await two_sdrs.assigned())
    assert (first["rep_id"], second["rep_id"], second["attempt"]) == ("sdr-a", "sdr-b", 2)
    assert {"rep_id": "sdr-a", "reason": "excluded_reassignment"} in second["trace"]["skipped"]
    assert (third["rep_id"], third["route"], third["attempt"]) == (QUEUE, "fallback", 3)
    skipped = {(s["rep_id"], s["reason"]) for s in third["trace"]["skipped"]}
    assert skipped == {("sdr-a", "excluded_reassignment"), ("sdr-b", "excluded_reassignment")}
    view = await two_sdrs.view("lk_ada")
    assert view is not None
    assert [a["attempt"] for a in view["assignments"]] == [1, 2, 3]
    assert view["assignment"]["fallback_queue"] == QUEUE
    assert view["assignment"]["rep_id"] is None


async def test_a_repeated_or_stale_reassignment_request_changes_nothing(
    two_sdrs: HandoffHarness,
) -> None:
    await two_sdrs.deliver(sales_ready("lk_ada"), reassignment("lk_ada", attempt=2))
    await two_sdrs.apply(reassignment("lk_ada", attempt=2))
    await two_sdrs.deliver(sales_ready("lk_ada", episode=2))
    await two_sdrs.apply(reassignment("lk_ada", attempt=3, episode=1))

    assert [(e.data["episode"], e.data["attempt"]) for e in await two_sdrs.assigned()] == [
        (1, 1),
        (1, 2),
        (2, 1),
    ]


async def test_reassigning_a_lead_never_seen_as_sales_ready_fails_for_the_dead_letter_topic(
    two_sdrs: HandoffHarness,
) -> None:
    with pytest.raises(LookupError, match="never sales-ready"):
        await two_sdrs.deliver(reassignment("lk_unknown", attempt=2))


async def test_nobody_eligible_and_no_owner_queues_the_lead_and_counts_it(tmp: Path) -> None:
    async with harness_for(tmp, [make_rep("sdr-a", active=False)]) as handoff:
        await handoff.deliver(sales_ready("lk_ada"))

        [event] = await handoff.assigned()
        assert (event.data["rep_id"], event.data["route"]) == (QUEUE, "fallback")
        assert event.data["trace"]["chosen"]["rep_id"] == QUEUE
        assert event.data["sla"]["policy"] == "sdr"  # the SDR pool's policy, queued or not
        assert (
            handoff.metric(
                "leadrelay_handoff_no_eligible_rep_total", role="sdr", queue=QUEUE, owned="false"
            )
            == 1
        )


async def test_nobody_eligible_goes_to_the_fallback_owner_on_their_own_calendar(
    tmp: Path,
) -> None:
    owner = make_rep("ae-owner", role="ae", time_zone="Asia/Tokyo", working_hours=OFFICE_HOURS)
    async with harness_for(
        tmp,
        [make_rep("sdr-a", active=False), owner],
        fallback={"queue": QUEUE, "owner_rep_id": "ae-owner"},
    ) as handoff:
        await handoff.deliver(sales_ready("lk_ada"))

        [event] = await handoff.assigned()
        assert (event.data["rep_id"], event.data["route"]) == ("ae-owner", "fallback")
        # Default policy (4 business hours) from Thursday's 09:00 opening in Tokyo.
        assert event.data["sla"]["first_touch_due"] == "2025-06-05T04:00:00Z"
        assert (
            handoff.metric(
                "leadrelay_handoff_no_eligible_rep_total", role="sdr", queue=QUEUE, owned="true"
            )
            == 1
        )


async def test_the_owner_of_the_leads_account_gets_it(tmp: Path) -> None:
    account = Account(
        id="acct-ae",
        name="Analytical Engines",
        domains=("analytical-engines.example",),
        owner_rep_id="ae-owner",
    )
    reps = [make_rep("sdr-a"), make_rep("ae-owner", role="ae", team="enterprise")]
    async with harness_for(tmp, reps, (account,)) as handoff:
        await handoff.deliver(sales_ready("lk_ada"))

        [event] = await handoff.assigned()
        assert (event.data["rep_id"], event.data["route"], event.data["role"]) == (
            "ae-owner",
            "account",
            "ae",
        )
        assert event.data["trace"]["steps"][0]["outcome"] == "assigned"


async def test_a_rule_can_name_a_form_among_the_high_intent_actions(tmp: Path) -> None:
    rules = [
        {
            "id": "demo-form-to-ae",
            "when": {"high_intent_actions_any": ["form_submitted:demo-request"]},
            "assign_to": {"role": "ae"},
        }
    ]
    async with harness_for(
        tmp, [make_rep("sdr-a"), make_rep("ae-b", role="ae")], rules=rules
    ) as handoff:
        await handoff.deliver(sales_ready("lk_ada"))

        [event] = await handoff.assigned()
        assert (event.data["rep_id"], event.data["route"]) == ("ae-b", "rule")


async def test_open_capacity_frees_up_when_a_lead_is_reassigned_away(tmp: Path) -> None:
    busy = make_rep("sdr-a", weight=5, capacity={"open": 1})
    async with harness_for(tmp, [busy, make_rep("sdr-b")]) as handoff:
        await handoff.deliver(sales_ready("lk_1"), sales_ready("lk_2"))
        await handoff.deliver(reassignment("lk_1", attempt=2, exclude=["sdr-a"]))
        await handoff.deliver(sales_ready("lk_3"))

        events = [e.data for e in await handoff.assigned()]
        assert [(e["lead_key"], e["rep_id"]) for e in events] == [
            ("lk_1", "sdr-a"),
            ("lk_2", "sdr-b"),
            ("lk_1", "sdr-b"),
            ("lk_3", "sdr-a"),
        ]
        assert {"rep_id": "sdr-a", "reason": "open_capacity_reached"} in events[1]["trace"][
            "skipped"
        ]
        loads = await _loads(handoff)
        assert loads == {"sdr-a": (2, 1), "sdr-b": (2, 2)}


def outcome(lead_key: str, rep_id: str, result: str, event_id: str) -> CloudEvent:
    """What the CRM reports when a rep acts on a lead."""
    data = {
        "lead_key": lead_key,
        "rep_id": rep_id,
        "outcome": result,
        "occurred_at": NOW.isoformat(),
    }
    return new_event(
        "leadrelay.sales_activity.v1", "/tests", data, subject=lead_key, id=event_id, time=NOW
    )


async def test_open_capacity_frees_up_when_the_rep_is_done_with_a_lead(tmp: Path) -> None:
    busy = make_rep("sdr-a", weight=5, capacity={"open": 1})
    async with harness_for(tmp, [busy, make_rep("sdr-b")]) as handoff:
        await handoff.deliver(sales_ready("lk_1"), sales_ready("lk_2"))
        await handoff.deliver(outcome("lk_1", "sdr-a", "contacted", "crm-1"))  # still open
        await handoff.deliver(sales_ready("lk_3"))
        await handoff.deliver(outcome("lk_1", "sdr-a", "won", "crm-2"))
        await handoff.deliver(outcome("lk_1", "sdr-a", "won", "crm-2-again"))  # CRM resend
        await handoff.deliver(outcome("lk_2", "sdr-a", "lost", "crm-3"))  # not sdr-a's lead
        await handoff.deliver(sales_ready("lk_4"))

        events = [e.data for e in await handoff.assigned()]
        assert [(e["lead_key"], e["rep_id"]) for e in events] == [
            ("lk_1", "sdr-a"),
            ("lk_2", "sdr-b"),
            ("lk_3", "sdr-b"),  # sdr-a still works lk_1
            ("lk_4", "sdr-a"),  # lk_1 won: sdr-a has room again
        ]
        assert await _loads(handoff) == {"sdr-a": (2, 1), "sdr-b": (2, 2)}


async def test_daily_capacity_counts_per_local_day_of_the_rep(tmp: Path) -> None:
    capped = make_rep("sdr-a", weight=5, capacity={"daily": 1})
    async with harness_for(tmp, [capped, make_rep("sdr-b")]) as handoff:
        await handoff.deliver(sales_ready("lk_1"), sales_ready("lk_2"))
        handoff.clock.now = NOW.replace(day=5)
        await handoff.deliver(sales_ready("lk_3"))

        assert [e.data["rep_id"] for e in await handoff.assigned()] == ["sdr-a", "sdr-b", "sdr-a"]


async def test_round_robin_state_persists_between_decisions(two_sdrs: HandoffHarness) -> None:
    await two_sdrs.deliver(*(sales_ready(f"lk_{n}") for n in range(6)))

    assert [e.data["rep_id"] for e in await two_sdrs.assigned()] == ["sdr-a", "sdr-b"] * 3
    assert (
        two_sdrs.metric("leadrelay_handoff_rep_assignments_total", rep_id="sdr-b", role="sdr") == 3
    )
    assert two_sdrs.metric("leadrelay_handoff_rep_weight", rep_id="sdr-b", role="sdr") == 1


async def test_only_one_assignment_row_can_exist_per_episode_attempt(
    two_sdrs: HandoffHarness,
) -> None:
    await two_sdrs.deliver(sales_ready("lk_ada"))
    async with two_sdrs.store.engine.connect() as connection:
        rows = (await connection.execute(select(assignments))).mappings().all()
    assert [(r["lead_key"], r["episode"], r["attempt"], r["rep_id"]) for r in rows] == [
        ("lk_ada", 1, 1, "sdr-a")
    ]
    duplicate = dict(rows[0]) | {"assignment_id": "another-id"}
    with pytest.raises(Exception, match="UNIQUE"):
        async with two_sdrs.store.transaction() as tx:
            await tx.connection.execute(assignments.insert().values(**duplicate))


async def _loads(handoff: HandoffHarness) -> dict[str, tuple[int, int]]:
    """rep id -> (assigned on their current day, open leads)."""
    async with handoff.store.engine.connect() as connection:
        rows = await connection.execute(
            select(rep_load.c.rep_id, rep_load.c.assigned_on_day, rep_load.c.open_leads)
        )
        return {rep_id: (day, open_leads) for rep_id, day, open_leads in rows}


async def test_a_decision_rolled_back_is_not_counted(two_sdrs: HandoffHarness) -> None:
    """The consume loop may roll a batch back and apply it again event by event."""

    async def batch_failing_after_the_decision() -> None:
        async with two_sdrs.store.transaction() as tx:
            await two_sdrs.handlers.apply([sales_ready("lk_ada")], tx)
            raise RuntimeError("a later event in the batch failed")

    with pytest.raises(RuntimeError, match="later event in the batch"):
        await batch_failing_after_the_decision()
    assert (
        two_sdrs.metric("leadrelay_handoff_assignments_total", route="round_robin", role="sdr") == 0
    )

    await two_sdrs.deliver(sales_ready("lk_ada"))
    assert (
        two_sdrs.metric("leadrelay_handoff_assignments_total", route="round_robin", role="sdr") == 1
    )
    assert [e.data["rep_id"] for e in await two_sdrs.assigned()] == ["sdr-a"]


@pytest.mark.parametrize(("episodes", "expected"), [(1, "sdr-b"), (0, "sdr-a")])
async def test_a_rep_who_rejected_the_lead_does_not_get_its_next_episode(
    tmp: Path, episodes: int, expected: str
) -> None:
    reps = [make_rep("sdr-a"), make_rep("sdr-b")]
    rejections = {"exclude_rep_for_episodes": episodes}
    async with harness_for(tmp, reps, rejections=rejections) as handoff:
        await handoff.deliver(sales_ready("lk_ada"), sales_ready("lk_bob"))  # a, then b
        await handoff.deliver(sales_activity("rejected", "sdr-a", NOW, lead_key="lk_ada"))
        await handoff.deliver(sales_ready("lk_ada", episode=2))  # sdr-a's turn in the rotation

        *_, again = await handoff.assigned()
    assert again.data["rep_id"] == expected
    skipped = {s["rep_id"]: s["reason"] for s in again.data["trace"]["skipped"]}
    assert ("sdr-a" in skipped) is (episodes > 0)
    if episodes:
        assert skipped["sdr-a"] == "rejected_lead"


async def test_a_rejection_by_a_rep_who_lost_the_lead_does_not_exclude_them(
    two_sdrs: HandoffHarness,
) -> None:
    await two_sdrs.deliver(sales_ready("lk_ada"))  # sdr-a
    await two_sdrs.deliver(reassignment("lk_ada", attempt=2, exclude=["sdr-a"]))  # sdr-b
    await two_sdrs.deliver(sales_activity("rejected", "sdr-a", NOW, lead_key="lk_ada"))
    await two_sdrs.deliver(sales_activity("rejected", "sdr-b", NOW, lead_key="lk_ada"))
    await two_sdrs.deliver(sales_ready("lk_ada", episode=2))

    *_, again = await two_sdrs.assigned()
    assert again.data["rep_id"] == "sdr-a"  # only sdr-b's rejection counted


@pytest.mark.parametrize(("rejected_after", "next_rep"), [(5, "sdr-a"), (60, "sdr-b")])
async def test_a_quick_rejection_gives_the_rep_their_turn_back(
    tmp: Path, rejected_after: int, next_rep: str
) -> None:
    reps = [make_rep("sdr-a"), make_rep("sdr-b")]
    credit = {"give_back_on_rejection_within": "15m"}
    async with harness_for(tmp, reps, credit=credit) as handoff:
        await handoff.deliver(sales_ready("lk_ada"))  # sdr-a
        rejected_at = NOW + timedelta(minutes=rejected_after)
        await handoff.deliver(sales_activity("rejected", "sdr-a", rejected_at, lead_key="lk_ada"))
        await handoff.deliver(sales_ready("lk_bob"))

        *_, bob = await handoff.assigned()
        assert bob.data["rep_id"] == next_rep
        assert handoff.metric("leadrelay_handoff_rep_share_expected", pool="sdr:*",
                              rep_id="sdr-a") == 0.5  # fmt: skip
        actual_a = 1.0 if rejected_after == 5 else 0.5  # a turn given back does not count
        assert handoff.metric("leadrelay_handoff_rep_share_actual", pool="sdr:*",
                              rep_id="sdr-a") == actual_a  # fmt: skip


@pytest.mark.parametrize(("give_back", "next_rep"), [(True, "sdr-a"), (False, "sdr-b")])
async def test_a_lead_taken_by_reassignment_can_give_the_turn_back(
    tmp: Path, give_back: bool, next_rep: str
) -> None:
    reps = [make_rep("sdr-a"), make_rep("sdr-b")]
    credit = {"give_back_on_reassignment": give_back}
    async with harness_for(tmp, reps, credit=credit) as handoff:
        await handoff.deliver(sales_ready("lk_ada"))  # sdr-a
        await handoff.deliver(reassignment("lk_ada", attempt=2, exclude=["sdr-a"]))  # sdr-b
        await handoff.deliver(sales_ready("lk_bob"))

        *_, bob = await handoff.assigned()
    assert bob.data["rep_id"] == next_rep


async def test_a_batch_routes_its_leads_as_one_by_one_would_and_skips_its_own_repeats(
    tmp: Path,
) -> None:
    reps = [make_rep("sdr-a"), make_rep("sdr-b", weight=2), make_rep("sdr-c", capacity={"open": 1})]
    leads = [sales_ready(f"lk_{n}") for n in range(8)]
    repeat = sales_ready("lk_0", event_id="lk_0-replayed")  # the same episode under a new id
    async with harness_for(tmp / "one", reps) as one_by_one:
        await one_by_one.deliver(*leads, repeat)
        expected = [(e.subject, e.data["rep_id"]) for e in await one_by_one.assigned()]
    async with harness_for(tmp / "batch", reps) as batched:
        applied = await batched.deliver_batch(*leads, repeat, leads[3])
        assigned = [(e.subject, e.data["rep_id"]) for e in await batched.assigned()]
        loads = await _loads(batched)
    assert applied == [True] * 9 + [False]  # the last one is a repeated id
    assert assigned == expected
    assert len(assigned) == 8
    assert loads["sdr-c"] == (1, 1)
