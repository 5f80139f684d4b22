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

NO_SUCH_LEAD = "no lead has this id (a lead id is its lead key, lk_..., never an email address)"
"""The 404 detail: it never repeats the id asked for, which a caller may have set to an email."""


def lead_view_router(store: Store, parts: Sequence[LeadViewPart]) -> APIRouter:
    """The read route; the first part (scoring's) decides whether the lead exists."""
    router = APIRouter(tags=["leads"])

    @router.get("/v1/leads/{lead_id}")
    async def get_lead(lead_id: str, _: ApiToken) -> dict[str, Any]:
        """One lead: stage, scores with breakdown, timeline, assignment and SLA clocks."""
        merged = await read_lead(store, parts, lead_id)
        if merged is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, NO_SUCH_LEAD)
        return merged

    return router


async def read_lead(
    store: Store, parts: Sequence[LeadViewPart], lead_id: str
) -> dict[str, Any] | None:
    """The parts merged in order; None when the first part (scoring's) does not know the lead."""
    async with store.read() as connection:
        views = [await part(connection, lead_id) for part in parts]
    if not views or views[0] is None:
        return None
    merged: dict[str, Any] = {}
    for view in views:
        merged.update(view or {})
    return merged
