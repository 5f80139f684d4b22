"""Hand-off's part of ``GET /v1/leads/{lead_id}``: the current assignment, its trace, the history.

The lead's profile and scores are scoring's part of the view, so the assignment context is left
out here; what sales ops come for is who has the lead, why (the trace) and by when (the SLA).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.handoff.repository import StoredAssignment, lead_histories


async def lead_view(connection: AsyncConnection, lead_key: str) -> dict[str, Any] | None:
    """``{"assignment": latest, "assignments": all oldest first}``; None if never assigned."""
    history = (await lead_histories(connection, [lead_key]))[lead_key]
    if not history:
        return None
    views = [_view(assignment) for assignment in history]
    return {"assignment": views[-1], "assignments": views}


def _view(assignment: StoredAssignment) -> dict[str, Any]:
    return {
        "assignment_id": assignment.assignment_id,
        "episode": assignment.episode,
        "attempt": assignment.attempt,
        "rep_id": assignment.rep_id,
        "fallback_queue": assignment.fallback_queue,
        "route": assignment.route,
        "role": assignment.role,
        "team": assignment.team,
        "assigned_at": assignment.assigned_at.isoformat(),
        "trace": assignment.trace,
        "sla": assignment.event.get("sla", {}),
    }
