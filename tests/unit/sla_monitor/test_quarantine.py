"""A poison clock cannot stop every SLA: it is quarantined, and the others keep firing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import pytest
from sqlalchemy import select

from leadrelay.store.unit_of_work import Transaction
from services.sla_monitor.domain import SlaAction
from services.sla_monitor.jobs.firing import FiringLoop
from services.sla_monitor.messages import ActionPublisher
from services.sla_monitor.tables import sla_clocks

from .helpers import berlin
from .support import Harness, harness, lead_assigned, outbox_events

ASSIGNED = berlin(2026, 1, 13, 10, 0)  # a Tuesday; SDR first touch is due within a business hour
POISON = "lk_poison00"
HEALTHY = "lk_healthy0"


class PoisonedPublisher(ActionPublisher):
    """The real publisher, except that firing :data:`POISON`'s clocks raises a bug's error."""

    async def publish(
        self, tx: Transaction, actions: Iterable[tuple[SlaAction, str | None]]
    ) -> None:
        actions = list(actions)
        if any(action.lead_key == POISON for action, _ in actions):
            raise KeyError("a template the escalation needs")
        await super().publish(tx, actions)


@pytest.fixture
async def sla(sqlite_url: str) -> AsyncIterator[Harness]:
    async for h in harness(sqlite_url, ASSIGNED):
        yield h


async def clock_states(h: Harness) -> dict[str, set[str]]:
    async with h.store.read() as connection:
        rows = await connection.execute(select(sla_clocks.c.lead_key, sla_clocks.c.state))
        states: dict[str, set[str]] = {}
        for lead_key, state in rows.all():
            states.setdefault(lead_key, set()).add(state)
    return states


async def test_a_clock_whose_firing_raises_is_quarantined_and_the_others_keep_firing(
    sla: Harness,
) -> None:
    for lead_key in (POISON, HEALTHY):
        await sla.handle(lead_assigned(f"asg-{lead_key}", "rep-anna", ASSIGNED, lead_key=lead_key))
    real = sla.monitor.firing._publisher
    poisoned = PoisonedPublisher(real.topic_name)
    firing = FiringLoop(sla.store, poisoned, sla.monitor.metrics, poll_seconds=0.01)
    sla.clock.set(berlin(2026, 1, 16, 10, 0))  # days later: every first-touch step is due

    async def healthy_lead_fired() -> bool:
        return any(e.subject == HEALTHY for e in await outbox_events(sla.store))

    stop = asyncio.Event()
    running = asyncio.create_task(firing.run(stop))
    try:
        async with asyncio.timeout(30):
            while not await healthy_lead_fired():
                assert not running.done(), running  # the loop must not die of the poison
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await running  # and it stops cleanly, without raising

    events = await outbox_events(sla.store)
    assert {e.subject for e in events} == {HEALTHY}  # the poison's round queued nothing
    states = await clock_states(sla)
    assert states[POISON] == {"failed"}
    assert "failed" not in states[HEALTHY]
    quarantined = sla.registry.get_sample_value("leadrelay_sla_clocks_quarantined_total")
    assert quarantined == await clock_count(sla, POISON)
    assert quarantined


async def clock_count(h: Harness, lead_key: str) -> int:
    async with h.store.read() as connection:
        rows = await connection.execute(
            select(sla_clocks.c.clock_id).where(sla_clocks.c.lead_key == lead_key)
        )
        return len(rows.all())
