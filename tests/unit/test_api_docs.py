"""``/docs`` is rendered locally: every operation, and no asset from another host."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from leadrelay.api_docs import docs_router


def test_docs_list_every_operation_and_load_nothing_from_elsewhere() -> None:
    app = FastAPI(title="LeadRelay", docs_url=None, redoc_url=None)

    @app.get("/v1/reports/funnel", summary="The funnel report")
    async def funnel(by: str | None = None) -> dict[str, str]:
        return {}

    app.include_router(docs_router())
    page = TestClient(app).get("/docs")
    assert page.status_code == 200
    assert "GET /v1/reports/funnel" in page.text
    assert "The funnel report" in page.text
    assert "<code>by</code>" in page.text
    assert re.findall(r"(?:src|href)='(https?:[^']*)'", page.text) == []
    assert "cdn" not in page.text.lower()
