"""Generic sources: CloudEvents 1.0 in structured JSON, one or a batch.

Ingest takes the sender's event and makes it a LeadRelay event: the email is normalised and
the lead key derived from it, ``subject`` becomes the partition key, ``time`` is stamped when
missing, ``dataschema`` names the contract, and the id becomes a deterministic function of
the sender's ``source`` and ``id`` (two senders may both use id "1"; consumers deduplicate on
``id`` alone). Sender extension attributes (e.g. ``traceparent``) are kept. An attribute
sent as ``null`` is absent, as the CloudEvents JSON format says.
"""

from __future__ import annotations

from typing import Any

from leadrelay.contracts.envelope import CloudEvent, schema_uri, stable_event_id
from leadrelay.contracts.errors import ContractError, FieldError
from leadrelay.contracts.schemas import validate_envelope_dict
from leadrelay.contracts.topics import EventType
from services.ingest.domain.mapping.common import (
    INGESTIBLE_TYPES,
    IngestContext,
    identify,
    map_each,
    partition_key,
    raise_if,
    validated,
)
from services.ingest.domain.problems import unique

GENERIC_SOURCE = "generic"


def map_event(raw: object, context: IngestContext) -> CloudEvent:
    """One structured CloudEvent; ``ContractError`` with pointers into the body."""
    return _map(raw, context)


def map_batch(raw: object, context: IngestContext) -> list[CloudEvent]:
    """A batch is accepted as a whole, so every bad item is reported, prefixed by its index."""
    if not isinstance(raw, list):
        raise ContractError([FieldError("", "must be a JSON array of CloudEvents")])
    return map_each(raw, lambda item: _map(item, context))


_FEEDBACK = frozenset({EventType.SALES_ACTIVITY, EventType.MARKETING_ACTIVITY})
"""Reports about a known lead (from the CRM, from the MAP): no email kept, no ``source`` added."""


def _map(raw: object, context: IngestContext) -> CloudEvent:
    """Every problem of the item at once: envelope, identity and payload."""
    if not isinstance(raw, dict):
        raise ContractError([FieldError("", "must be a JSON object (a CloudEvent)")])
    raw = {name: value for name, value in raw.items() if value is not None}  # null == absent
    errors = _envelope_errors(raw)
    data = raw.get("data")
    if raw.get("type") not in INGESTIBLE_TYPES or not isinstance(data, dict):
        raise ContractError(errors or [FieldError("/data", "is required")])
    data = dict(data)
    feedback = raw["type"] in _FEEDBACK
    errors += identify(data, context, keep_email=not feedback)
    if not feedback:
        data.setdefault("source", GENERIC_SOURCE)
    event = {**raw, "data": data, "dataschema": schema_uri(raw["type"])}
    if isinstance(raw.get("source"), str) and isinstance(raw.get("id"), str):
        event["id"] = stable_event_id(GENERIC_SOURCE, raw["source"], raw["id"])
    event.setdefault("time", context.now.isoformat())
    subject = partition_key(data)
    if subject is None:
        event.pop("subject", None)
    else:
        event["subject"] = subject
    try:
        mapped = validated(event)
    except ContractError as error:
        found = error.errors
        if errors:  # "needs lead_key or anonymous_id" only repeats that the email was bad
            found = [e for e in found if e.pointer != "/data"]
        raise ContractError(unique([*errors, *found])) from None
    raise_if(errors)
    return mapped


def _envelope_errors(raw: dict[str, Any]) -> list[FieldError]:
    """The sender's envelope as sent, with "known type" narrowed to "a type ingest takes"."""
    try:
        validate_envelope_dict(raw)
        errors: list[FieldError] = []
    except ContractError as error:
        errors = error.errors
    if raw.get("type") not in INGESTIBLE_TYPES and not any(e.pointer == "/type" for e in errors):
        errors.append(FieldError("/type", "must be one of: " + ", ".join(INGESTIBLE_TYPES)))
    return errors
