"""Requests generated from the app's own OpenAPI document never get a 5xx while the broker is up.

Schemathesis draws the cases (valid and invalid bodies, headers, content types); half of them
are then signed correctly so the fuzzing reaches parsing, mapping and the real producer rather
than stopping at 401. A 503 is correct only when the broker is down, so here any 5xx is a bug.
"""

from __future__ import annotations

import json
import time
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.domain.signatures import sign_hubspot_v3
from tests.integration.ingest.conftest import (
    API_TOKEN,
    BASE_URL,
    HUBSPOT_SECRET,
    MARKETO_TOKEN,
    Ingest,
    standard_webhook_headers,
)

EXAMPLES_PER_ROUTE = 30
INGEST_ROUTES = ("/v1/events", "/v1/webhooks/hubspot", "/v1/webhooks/marketo", "/v1/sales-activity")


def draw_cases(openapi: dict[str, Any], path: str) -> list[Any]:
    """Cases for one operation, drawn synchronously (hypothesis does not drive async tests)."""
    operation = schemathesis.openapi.from_dict(openapi)[path]["POST"]
    cases: list[Any] = []

    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        database=None,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        cases.append(data.draw(operation.as_strategy()))

    collect()
    return cases


def request_of(case: Any, sign: bool) -> dict[str, Any]:
    """The case as httpx arguments; signed like a legitimate sender when ``sign``."""
    kwargs = case.as_transport_kwargs(base_url="")
    if "json" in kwargs:
        body = json.dumps(kwargs["json"]).encode()
    else:
        raw = kwargs.get("data") or kwargs.get("content") or b""
        body = raw if isinstance(raw, bytes) else str(raw).encode()
    headers = {
        name: value for name, value in kwargs["headers"].items() if _latin1(name) and _latin1(value)
    }
    if sign:
        headers.update(_credentials(case.path, body))
    return {
        "method": kwargs["method"],
        "url": case.formatted_path,
        "content": body,
        "headers": headers,
    }


def _credentials(path: str, body: bytes) -> dict[str, str]:
    if path == "/v1/events":
        return standard_webhook_headers(body)
    if path == "/v1/webhooks/marketo":
        return {"X-Marketo-Token": MARKETO_TOKEN}
    if path == "/v1/sales-activity":
        return {"Authorization": f"Bearer {API_TOKEN}"}
    timestamp_ms = int(time.time() * 1000)
    signature = sign_hubspot_v3(
        HUBSPOT_SECRET.encode(), "POST", BASE_URL + path, body, timestamp_ms
    )
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(timestamp_ms)}


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


async def test_no_generated_request_gets_a_server_error(ingest: Ingest) -> None:
    openapi = (await ingest.client.get("/openapi.json")).json()
    statuses: dict[int, int] = {}
    for path in INGEST_ROUTES:
        for index, case in enumerate(draw_cases(openapi, path)):
            request = request_of(case, sign=index % 2 == 0)
            response = await ingest.client.request(**request)
            assert response.status_code < 500, (path, request, response.text)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    assert sum(statuses.values()) >= 100
    assert statuses.keys() > {401, 422}  # the run reached past authentication
