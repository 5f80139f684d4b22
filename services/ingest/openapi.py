"""What the OpenAPI document says about the ingest routes: bodies, headers, problem answers.

The routes read the raw body themselves (signatures cover the exact bytes, and the order of
checks matters: 415, 413, 401, then 400/422), so their request bodies are described here
rather than inferred from parameters.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, Field

from leadrelay.contracts.events import SalesOutcome
from services.ingest.domain.mapping.common import INGESTIBLE_TYPES
from services.ingest.domain.mapping.marketo import MarketoCall
from services.ingest.domain.problems import PROBLEM_MEDIA_TYPE

CLOUDEVENT_JSON = "application/cloudevents+json"
CLOUDEVENT_BATCH_JSON = "application/cloudevents-batch+json"
JSON = "application/json"


class FieldProblem(BaseModel):
    """One bad field."""

    pointer: str = Field(description="JSON pointer into the request body, e.g. /2/data/email")
    detail: str = Field(description="What was expected (never the value sent)")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


class Accepted(BaseModel):
    """The events are durably in Kafka (acks=all)."""

    accepted: int = Field(description="How many events the request carried")
    event_ids: list[str] = Field(description="The ids of the events as produced")
    duplicate: bool = Field(
        description="True for a retry of a delivery already accepted: "
        "nothing was produced a second time"
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented refusals of a route."""
    meaning = {
        400: "Malformed JSON",
        401: "Missing, wrong, stale or replayed credentials",
        409: "The webhook-id was already accepted for different content; nothing accepted",
        413: "Body above LEADRELAY_MAX_BODY_BYTES",
        415: "Wrong Content-Type",
        422: "The body violates the event contract; `errors` names each field",
        503: "Broker (or state store) unavailable; nothing accepted, retry after Retry-After",
    }
    return {
        status: {
            "description": meaning[status],
            "model": ProblemDetails,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_CLOUDEVENT: dict[str, Any] = {
    "type": "object",
    "required": ["specversion", "id", "source", "type", "data"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1, "maxLength": 200},
        "source": {"type": "string", "minLength": 1, "maxLength": 500},
        "type": {"enum": list(INGESTIBLE_TYPES)},
        "time": {"type": "string", "format": "date-time"},
        "subject": {"type": "string", "description": "Ignored: ingest sets the lead key"},
        "data": {
            "type": "object",
            "description": "Payload per schemas/<type>.json; send "
            "`email` and ingest derives `lead_key`",
        },
    },
}

STANDARD_WEBHOOKS = {
    "parameters": [
        _header("webhook-id", "Unique message id; the same on the sender's retries"),
        _header("webhook-timestamp", "Unix seconds when signed; 5-minute tolerance"),
        _header(
            "webhook-signature",
            "Space-separated `v1,<base64 HMAC-SHA256>` of "
            "`{webhook-id}.{webhook-timestamp}.{body}`",
        ),
    ],
    "requestBody": {
        "required": True,
        "content": {
            CLOUDEVENT_JSON: {"schema": _CLOUDEVENT},
            CLOUDEVENT_BATCH_JSON: {"schema": {"type": "array", "items": _CLOUDEVENT}},
        },
    },
}

_HUBSPOT_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["eventId", "portalId", "occurredAt", "subscriptionType", "objectId"],
    "properties": {
        "eventId": {"type": "integer"},
        "portalId": {"type": "integer"},
        "occurredAt": {"type": "integer", "minimum": 0},
        "objectId": {"type": "integer"},
        "subscriptionType": {"type": "string", "minLength": 1},
        "objectTypeId": {"type": "string"},
        "propertyName": {"type": "string"},
        "propertyValue": {"type": "string"},
        "changeSource": {"type": "string"},
        "attemptNumber": {"type": "integer"},
        "subscriptionId": {"type": "integer"},
    },
}

_HUBSPOT_CONTACT: dict[str, Any] = {
    "type": "object",
    "required": ["properties", "form-submissions"],
    "properties": {
        "vid": {"type": "integer"},
        "portal-id": {"type": "integer"},
        "properties": {
            "type": "object",
            "required": ["email"],
            "additionalProperties": {"type": "object", "properties": {"value": {"type": "string"}}},
        },
        "form-submissions": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["form-id"],
                "properties": {
                    "form-id": {"type": "string", "minLength": 1},
                    "title": {"type": "string"},
                    "timestamp": {"type": "integer", "minimum": 0},
                    "conversion-id": {"type": "string"},
                    "page-url": {"type": "string"},
                },
            },
        },
    },
}

HUBSPOT = {
    "parameters": [
        _header(
            "X-HubSpot-Signature-v3",
            "base64 HMAC-SHA256 (client secret) of method + URI + body + timestamp",
        ),
        _header(
            "X-HubSpot-Request-Timestamp", "Unix milliseconds; older than 5 minutes is refused"
        ),
    ],
    "requestBody": {
        "required": True,
        "content": {
            JSON: {
                "schema": {"anyOf": [{"type": "array", "items": _HUBSPOT_EVENT}, _HUBSPOT_CONTACT]}
            }
        },
    },
}

MARKETO = {
    "parameters": [_header("X-Marketo-Token", "The shared secret LEADRELAY_MARKETO_TOKEN")],
    "requestBody": {
        "required": True,
        "content": {JSON: {"schema": MarketoCall.model_json_schema()}},
    },
}

_SALES_ACTIVITY: dict[str, Any] = {
    "type": "object",
    "required": ["rep_id", "outcome", "occurred_at"],
    "properties": {
        "id": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "The CRM's id of this activity (the event id derives from it)",
        },
        "lead_key": {"type": "string", "minLength": 1, "maxLength": 200},
        "email": {"type": "string", "description": "Instead of lead_key"},
        "rep_id": {"type": "string", "minLength": 1, "maxLength": 200},
        "outcome": {"enum": list(get_args(SalesOutcome))},
        "reason": {"type": "string", "minLength": 1, "maxLength": 1000},
        "occurred_at": {"type": "string", "format": "date-time"},
        "crm": {"type": "string", "minLength": 1, "maxLength": 100},
        "assignment_id": {"type": "string", "minLength": 1, "maxLength": 200},
    },
}

SALES_ACTIVITY = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {
                "schema": {"anyOf": [_SALES_ACTIVITY, {"type": "array", "items": _SALES_ACTIVITY}]}
            }
        },
    },
}
