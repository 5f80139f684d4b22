"""One service computes deadlines, the other uses the figure it is given: the monitor enforces the
deadlines ``lead_assigned.sla`` announced, and computes only those an event lacks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.sla_monitor.domain import ClockKind, SlaClock
from services.sla_monitor.repository import clocks_of_lead

from .helpers import berlin
from .support import LEAD, Emitted, Harness, harness, lead_assigned, outbox_events

ASSIGNED = berlin(2026, 1, 13, 10, 0)  # a Tuesday: the SDR rule says first touch due 11:00
ANNOUNCED = berlin(2026, 1, 13, 10, 20)  # what hand-off told the rep instead


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
async def sla(sqlite_url: str) -> AsyncIterator[Harness]:
    async for h in harness(sqlite_url, ASSIGNED):
        yield h


async def clocks(h: Harness) -> dict[ClockKind, SlaClock]:
    async with h.store.engine.connect() as connection:
        return {c.kind: c for c in await clocks_of_lead(connection, LEAD)}


async def fire_at(h: Harness, at: datetime) -> list[Emitted]:
    before = len(await outbox_events(h.store))
    h.clock.set(at)
    await h.monitor.firing.drain()
    return (await outbox_events(h.store))[before:]


async def test_the_announced_first_touch_deadline_is_enforced_not_the_monitors_own(
    sla: Harness,
) -> None:
    terms = {"first_touch_due": iso(ANNOUNCED), "policy": "sdr"}
    await sla.handle(lead_assigned("as-1", "rep-anna", ASSIGNED, sla=terms))

    started = await clocks(sla)
    assert started[ClockKind.FIRST_TOUCH].due_at == ANNOUNCED
    assert started[ClockKind.ACCEPTANCE].due_at == berlin(2026, 1, 14, 10, 0)  # not announced
    assert started[ClockKind.FIRST_TOUCH].warn_at == berlin(2026, 1, 13, 10, 15)  # 75% of it
    breach = await fire_at(sla, ANNOUNCED)
    assert [e.type for e in breach] == ["leadrelay.sla_breached.v1", "leadrelay.sla_escalated.v1"]
    assert breach[0].data["deadline"] == iso(ANNOUNCED)
    reassign = await fire_at(sla, berlin(2026, 1, 13, 11, 20))  # next step 1bh after the breach
    assert [e.type for e in reassign] == ["leadrelay.lead_reassignment_requested.v1"]


async def test_the_announced_policy_is_the_one_whose_ladder_runs(sla: Harness) -> None:
    terms = {"first_touch_due": iso(ANNOUNCED), "policy": "default"}
    await sla.handle(lead_assigned("as-1", "rep-anna", ASSIGNED, sla=terms))
    clock = (await clocks(sla))[ClockKind.FIRST_TOUCH]
    assert clock.policy_id == "default"
    assert [step.step.action for step in clock.ladder] == ["escalate", "recycle"]


async def test_an_event_without_deadlines_gets_the_monitors_own(sla: Harness) -> None:
    await sla.handle(lead_assigned("as-1", "rep-anna", ASSIGNED, sla={}))
    started = await clocks(sla)
    assert started[ClockKind.FIRST_TOUCH].due_at == berlin(2026, 1, 13, 11, 0)
    assert started[ClockKind.FIRST_TOUCH].policy_id == "sdr"


async def test_an_unknown_announced_policy_keeps_the_figure_under_the_monitors_rules(
    sla: Harness,
) -> None:
    terms = {"first_touch_due": iso(ANNOUNCED), "policy": "retired-policy"}
    await sla.handle(lead_assigned("as-1", "rep-anna", ASSIGNED, sla=terms))
    clock = (await clocks(sla))[ClockKind.FIRST_TOUCH]
    assert (clock.due_at, clock.policy_id) == (ANNOUNCED, "sdr")
