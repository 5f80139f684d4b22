"""A rep's out-of-office, learnt from hand-off's roster events, pauses their running first-touch
clock or hands the lead on, as the SLA policy says (real SQLite store, injected clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from leadrelay.contracts.topics import Topic
from services.sla_monitor.domain import ClockKind, SlaClock
from services.sla_monitor.repository import clocks_of_lead, load_rep

from .helpers import berlin
from .support import (
    LEAD,
    Emitted,
    Harness,
    handing_on,
    harness,
    lead_assigned,
    outbox_events,
    rep_updated,
    topic,
)

ASSIGNED = berlin(2026, 1, 13, 10, 0)  # a Tuesday: SDR first touch due 11:00, warning 10:45
AWAY = (berlin(2026, 1, 13, 10, 30), berlin(2026, 1, 13, 14, 0))
GOES_AWAY = berlin(2026, 1, 13, 10, 20)


@pytest.fixture
async def sla(sqlite_url: str) -> AsyncIterator[Harness]:
    async for h in harness(sqlite_url, ASSIGNED):
        yield h


async def first_touch(h: Harness) -> SlaClock:
    async with h.store.engine.connect() as connection:
        clocks = await clocks_of_lead(connection, LEAD)
    return next(c for c in clocks if c.kind is ClockKind.FIRST_TOUCH and c.is_open)


async def fire_at(h: Harness, at: datetime) -> list[Emitted]:
    before = len(await outbox_events(h.store))
    h.clock.set(at)
    await h.monitor.firing.drain()
    return (await outbox_events(h.store))[before:]


async def test_pause_moves_the_running_first_touch_deadline_later(sla: Harness) -> None:
    await sla.handle(lead_assigned("as-1", "rep-anna", ASSIGNED))
    assert (await first_touch(sla)).due_at == berlin(2026, 1, 13, 11, 0)

    sla.clock.set(GOES_AWAY)
    await sla.handle(rep_updated("rep-anna", GOES_AWAY, [AWAY]))

    clock = await first_touch(sla)
    assert clock.due_at == berlin(2026, 1, 13, 14, 30)  # 30 minutes left when she is back
    assert await fire_at(sla, berlin(2026, 1, 13, 11, 5)) == []  # no breach while away
    breach = await fire_at(sla, berlin(2026, 1, 13, 14, 30))
    assert [e.type for e in breach] == ["leadrelay.sla_breached.v1", "leadrelay.sla_escalated.v1"]
    assert breach[0].data["deadline"] == "2026-01-13T13:30:00Z"


async def test_a_replayed_or_older_roster_change_changes_nothing(sla: Harness) -> None:
    await sla.handle(lead_assigned("as-1", "rep-anna", ASSIGNED))
    sla.clock.set(GOES_AWAY)
    await sla.handle(rep_updated("rep-anna", GOES_AWAY, [AWAY]))
    paused = await first_touch(sla)
    await sla.handle(rep_updated("rep-anna", GOES_AWAY, [AWAY]))
    await sla.handle(rep_updated("rep-anna", berlin(2026, 1, 13, 9, 0), []))  # stale
    assert await first_touch(sla) == paused
    async with sla.store.engine.connect() as connection:
        kept = await load_rep(connection, "rep-anna")
    assert kept is not None
    assert len(kept.out_of_office) == 1


async def test_absences_known_before_the_assignment_pause_its_clock(sla: Harness) -> None:
    sla.clock.set(berlin(2026, 1, 13, 8, 0))
    await sla.handle(rep_updated("rep-anna", berlin(2026, 1, 13, 8, 0), [AWAY]))
    sla.clock.set(ASSIGNED)
    await sla.handle(lead_assigned("as-1", "rep-anna", ASSIGNED))
    assert (await first_touch(sla)).due_at == berlin(2026, 1, 13, 14, 30)


async def test_another_reps_absence_leaves_the_clock_alone(sla: Harness) -> None:
    await sla.handle(lead_assigned("as-1", "rep-anna", ASSIGNED))
    sla.clock.set(GOES_AWAY)
    await sla.handle(rep_updated("rep-bob", GOES_AWAY, [AWAY]))
    assert (await first_touch(sla)).due_at == berlin(2026, 1, 13, 11, 0)


async def test_hand_on_requests_a_reassignment_and_ends_the_clocks(sqlite_url: str) -> None:
    async for h in harness(sqlite_url, ASSIGNED, defs=handing_on()):
        await h.handle(lead_assigned("as-1", "rep-anna", ASSIGNED))
        h.clock.set(GOES_AWAY)
        await h.handle(rep_updated("rep-anna", GOES_AWAY, [AWAY]))

        (request,) = await outbox_events(h.store)
        assert request.topic == topic(Topic.ASSIGNMENTS)
        assert request.type == "leadrelay.lead_reassignment_requested.v1"
        assert request.data["reason"] == "out_of_office"
        assert request.data["previous_assignment_id"] == "as-1"
        assert request.data["exclude_rep_ids"] == ["rep-anna"]
        assert request.data["attempt"] == 2
        async with h.store.engine.connect() as connection:
            assert not any(c.is_open for c in await clocks_of_lead(connection, LEAD))
        assert await fire_at(h, berlin(2026, 1, 13, 12, 0)) == []
