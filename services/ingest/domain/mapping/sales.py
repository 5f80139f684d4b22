"""CRM feedback: ``POST /v1/sales-activity`` bodies become ``leadrelay.sales_activity.v1``.

The body is the event's payload as the schema defines it, plus two conveniences: ``email``
instead of ``lead_key`` (ingest derives the key), and ``id``, the CRM's own id of the
activity, from which the event id derives. Without ``id`` the event id derives from the
fact itself (lead, rep, outcome, time, assignment), so a retried call still maps to the same
id. One object, or an array of them (accepted as a whole).
"""

from __future__ import annotations

from typing import Any

from leadrelay.contracts.envelope import CloudEvent, stable_event_id
from leadrelay.contracts.errors import ContractError, FieldError
from leadrelay.contracts.topics import EventType
from services.ingest.domain.mapping.common import (
    SOURCE_URI,
    IngestContext,
    envelope,
    event_time,
    identify,
    map_each,
    raise_if,
    repoint,
    validated,
)

SOURCE = SOURCE_URI + "sales-activity"


def map_activities(raw: object, context: IngestContext) -> list[CloudEvent]:
    """An object or an array of objects; errors point into the body (``/1/outcome``)."""
    if isinstance(raw, dict):
        return [_map(raw, context)]
    if not isinstance(raw, list):
        raise ContractError([FieldError("", "must be a JSON object or an array of objects")])
    return map_each(raw, lambda item: _map(item, context))


def _map(raw: object, context: IngestContext) -> CloudEvent:
    if not isinstance(raw, dict):
        raise ContractError([FieldError("", "must be a JSON object")])
    data = dict(raw)
    crm_id = data.pop("id", None)
    errors: list[FieldError] = []
    if crm_id is not None and not (isinstance(crm_id, str) and 0 < len(crm_id) <= 200):
        errors.append(FieldError("/id", "must be a string of 1 to 200 characters"))
    if "email" in data and not isinstance(data["email"], str):
        errors.append(FieldError("/email", 'must be of type "string"'))
    errors += repoint(identify(data, context, keep_email=False), "/data", "")
    data.pop("email", None)
    raise_if(errors)
    event = envelope(
        EventType.SALES_ACTIVITY,
        SOURCE,
        _event_id(crm_id, data),
        data,
        event_time(data.get("occurred_at"), context.now),
    )
    try:
        return validated(event)
    except ContractError as error:
        raise ContractError(repoint(error.errors, "/data", "")) from None


def _event_id(crm_id: Any, data: dict[str, Any]) -> str:
    """The CRM's id when it gave one, else the fact's identity."""
    if isinstance(crm_id, str):
        return stable_event_id("sales-activity", str(data.get("crm", "")), crm_id)
    parts = (
        data.get(name) for name in ("lead_key", "rep_id", "outcome", "occurred_at", "assignment_id")
    )
    return stable_event_id("sales-activity", *(str(p) if p is not None else "" for p in parts))
