"""What every source mapping shares: identity (email -> lead key), keys, and validation.

Pure: JSON values and an injected context in, CloudEvents or a ``ContractError`` out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadrelay.contracts.envelope import CloudEvent, schema_uri
from leadrelay.contracts.errors import ContractError, FieldError, json_pointer
from leadrelay.contracts.schemas import validate_event_dict
from leadrelay.contracts.topics import EventType
from leadrelay.identity import InvalidEmailError, lead_key, normalise_email
from services.ingest.domain.problems import prefixed

INGESTIBLE_TYPES: tuple[str, ...] = (
    EventType.WEB_ACTIVITY.value,
    EventType.FORM_SUBMITTED.value,
    EventType.SALES_ACTIVITY.value,
    EventType.MARKETING_ACTIVITY.value,
)
"""The event types outside systems may send; the others are LeadRelay's own conclusions."""

SOURCE_URI = "/leadrelay/ingest/"


@dataclass(frozen=True)
class IngestContext:
    """What a mapping needs besides the body: the lead-key secret and the time of receipt."""

    lead_key_secret: str
    now: datetime


def identify(
    data: dict[str, Any], context: IngestContext, *, keep_email: bool = True
) -> list[FieldError]:
    """Normalise ``data["email"]`` in place and derive ``data["lead_key"]`` from it.

    A ``lead_key`` sent alongside an email must be the one ingest derives: senders cannot
    compute it (they lack the secret), so a different one is a mistake worth refusing rather
    than silently re-keying. Without ``keep_email`` (sales activity has no email field) the
    email only serves to find the lead key and is removed.
    """
    email = data.get("email")
    if not isinstance(email, str):
        return []
    try:
        normalised = normalise_email(email)
    except InvalidEmailError:
        return [FieldError("/data/email", "must be an email address")]
    derived = lead_key(normalised, context.lead_key_secret)
    given = data.get("lead_key")
    if given is not None and given != derived:
        return [
            FieldError(
                "/data/lead_key",
                "does not belong to /data/email; leave it out and ingest derives it",
            )
        ]
    data["lead_key"] = derived
    if keep_email:
        data["email"] = normalised
    else:
        del data["email"]
    return []


def partition_key(data: Mapping[str, Any]) -> str | None:
    """The CloudEvent subject: the lead key, else (anonymous activity) the visitor id."""
    for field in ("lead_key", "anonymous_id"):
        value = data.get(field)
        if isinstance(value, str) and value:
            return value
    return None


def envelope(
    event_type: str, source: str, event_id: str, data: dict[str, Any], time: datetime | str
) -> dict[str, Any]:
    """A CloudEvent as a dict, keyed by the payload's partition key."""
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": time.isoformat() if isinstance(time, datetime) else time,
        "datacontenttype": "application/json",
        "dataschema": schema_uri(event_type),
        "data": data,
    }
    subject = partition_key(data)
    if subject is not None:
        raw["subject"] = subject
    return raw


def event_time(value: object, fallback: datetime) -> datetime:
    """The envelope's ``time``: when the fact happened if the payload says so, else receipt."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return fallback
        if parsed.tzinfo is not None:
            return parsed
    return fallback


def validated(raw: Mapping[str, Any]) -> CloudEvent:
    """The event, checked against its JSON Schema; ``ContractError`` names each bad field."""
    validate_event_dict(raw)
    return CloudEvent.from_dict(raw)


def without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    """Optional fields left out rather than sent as ``null`` (the schemas forbid null)."""
    return {name: value for name, value in values.items() if value is not None}


def repoint(errors: Iterable[FieldError], old: str, new: str) -> list[FieldError]:
    """Errors found in the event, located in the request body instead (``/data/x`` -> ``/x``)."""
    return [
        FieldError(
            new + e.pointer.removeprefix(old) if e.pointer.startswith(old) else new + e.pointer,
            e.message,
        )
        for e in errors
    ]


def at(*parts: str | int) -> str:
    """A JSON pointer from path parts."""
    return json_pointer(parts)


def raise_if(errors: list[FieldError]) -> None:
    """Refuse with every error found so far, if any."""
    if errors:
        raise ContractError(errors)


def map_each(items: list[Any], map_one: Callable[[Any], CloudEvent]) -> list[CloudEvent]:
    """Map every item of a batch, reporting every bad item's errors under its index (``/2/...``).

    A batch is accepted or refused as a whole, so the sender learns of all problems at once.
    """
    events: list[tuple[int, CloudEvent]] = []
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        try:
            events.append((index, map_one(item)))
        except ContractError as error:
            errors.extend(prefixed(error.errors, f"/{index}"))
    raise_if(errors)
    return without_id_conflicts(events)


def without_id_conflicts(indexed: Sequence[tuple[int, CloudEvent]]) -> list[CloudEvent]:
    """The events of a batch, refused whole if two items map to one id with other content.

    Consumers keep the first event of an id and drop the rest as redeliveries, so accepting
    both would silently lose the second. Both positions are named. An exact repeat is kept:
    it is a redelivery, and is dropped downstream as one.
    """
    first: dict[str, tuple[int, CloudEvent]] = {}
    errors: list[FieldError] = []
    for index, event in indexed:
        seen_at, seen = first.setdefault(event.id, (index, event))
        if seen != event:
            clash = "maps to the same event id as /{} with other content; give each its own id"
            errors += [
                FieldError(f"/{seen_at}", clash.format(index)),
                FieldError(f"/{index}", clash.format(seen_at)),
            ]
    raise_if(errors)
    return [event for _, event in indexed]
