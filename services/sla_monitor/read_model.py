"""The SLA part of ``GET /v1/leads/{lead_id}``: every clock, its deadline, state and steps taken."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.sla_monitor.domain import SlaClock, next_fire_at
from services.sla_monitor.repository import clocks_of_lead


async def lead_view(connection: AsyncConnection, lead_key: str) -> dict[str, Any] | None:
    """``{"sla_clocks": [...]}``, oldest assignment first (empty when none ever started)."""
    return {
        "sla_clocks": [_clock_view(clock) for clock in await clocks_of_lead(connection, lead_key)]
    }


def _clock_view(clock: SlaClock) -> dict[str, Any]:
    upcoming = next_fire_at(clock)
    return {
        "clock_id": clock.clock_id,
        "kind": clock.kind.value,
        "assignment_id": clock.assignment_id,
        "rep_id": clock.rep_id,
        "attempt": clock.attempt,
        "policy": clock.policy_id,
        "started_at": clock.started_at.isoformat(),
        "warn_at": clock.warn_at.isoformat() if clock.warn_at is not None else None,
        "due_at": clock.due_at.isoformat(),
        "state": clock.state.value,
        "next_step_at": upcoming.isoformat() if upcoming is not None else None,
        "steps_taken": [{"step": label, "at": at.isoformat()} for label, at in clock.steps_taken],
    }
