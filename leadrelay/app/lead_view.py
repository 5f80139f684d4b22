"""``GET /v1/leads/{lead_id}``: the single view of one lead, assembled from every service's part.

Scoring contributes the stage, scores and timeline; hand-off the assignment and its trace; the
SLA monitor the clocks. Every part is read in one read-only database snapshot (``Store.read()``:
REPEATABLE READ on PostgreSQL, one deferred transaction on SQLite's WAL), so the parts agree
with each other, and the view never waits for a writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, HTTPException, status

from leadrelay.api_auth import ApiToken
from leadrelay.store.read_model import LeadViewPart
from leadrelay.store.unit_of_work import Store


def lead_view_router(store: Store, parts: Sequence[LeadViewPart]) -> APIRouter:
    """The read route; the first part (scoring's) decides whether the lead exists."""
    router = APIRouter(tags=["leads"])

    @router.get("/v1/leads/{lead_id}")
    async def get_lead(lead_id: str, _: ApiToken) -> dict[str, Any]:
        """One lead: stage, scores with breakdown, timeline, assignment and SLA clocks."""
        async with store.read() as connection:
            views = [await part(connection, lead_id) for part in parts]
        if not views or views[0] is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lead {lead_id}")
        merged: dict[str, Any] = {}
        for view in views:
            merged.update(view or {})
        return merged

    return router
