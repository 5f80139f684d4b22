"""Validation of events against the JSON Schemas in ``schemas/`` (draft 2020-12).

The schemas are the published contract, so the runtime validates against the very files
integrators read rather than against a copy derived from the models. They are loaded lazily,
once, into a ``referencing.Registry`` built from the folder: ``$ref`` between files resolves
without any network access.

``jsonschema`` walks a schema in pure Python (milliseconds per event), so every check first asks
a compiled validator of the same files (``jsonschema-rs``, with this module's own format checks)
for a plain yes or no. Only a "no" goes on to ``jsonschema``, which decides and names each bad
field. The gate can only be stricter than ``jsonschema`` (it also asserts formats ``jsonschema``
leaves alone, and any surprise in it counts as a "no"), so it never lets through an event that
``jsonschema`` would refuse.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeGuard

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from leadrelay.contracts.envelope import RFC3339, SCHEMA_BASE_URI, CloudEvent, schema_uri
from leadrelay.contracts.errors import ContractError, FieldError, json_pointer
from leadrelay.contracts.topics import KNOWN_EVENT_TYPES, EventType

__all__ = [
    "KNOWN_EVENT_TYPES",
    "ContractError",
    "FieldError",
    "schema_registry",
    "schemas_dir",
    "validate_envelope_dict",
    "validate_event",
    "validate_event_dict",
    "validate_outgoing",
]

ENVELOPE_SCHEMA_URI = f"{SCHEMA_BASE_URI}cloudevent.json"

# Our own format checks, so that ``date-time`` is asserted whether or not jsonschema's optional
# format libraries happen to be installed.
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """RFC 3339 with a mandatory offset, and a real calendar date and time."""
    if not isinstance(value, str):
        return True
    if RFC3339.fullmatch(value) is None:
        return False
    datetime.fromisoformat(value.upper())
    return True


@_FORMATS.checks("email")
def _is_email(value: object) -> bool:
    """One ``@`` with something on each side; the schemas' patterns add the rest."""
    if not isinstance(value, str):
        return True
    local, at, domain = value.partition("@")
    return bool(local and at and domain and "@" not in domain)


def schemas_dir() -> Path:
    """The repo's ``schemas/`` in a checkout, else the copy packaged as ``leadrelay/_schemas``."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "schemas", here.parents[1] / "_schemas"):
        if (candidate / "cloudevent.json").is_file() and (candidate / "common.json").is_file():
            return candidate
    raise FileNotFoundError("LeadRelay schemas not found (neither schemas/ nor leadrelay/_schemas)")


@dataclass(frozen=True)
class _Catalog:
    registry: Registry[Any]
    envelope: Draft202012Validator
    payloads: Mapping[str, Draft202012Validator]
    fast_envelope: jsonschema_rs.Validator
    fast_payloads: Mapping[str, jsonschema_rs.Validator]


@functools.cache
def _catalog() -> _Catalog:
    """Load every schema once, on first use (never at import)."""
    resources = [
        DRAFT202012.create_resource(json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(schemas_dir().glob("*.json"))
    ]
    registry: Registry[Any] = Registry().with_resources(
        (resource.contents["$id"], resource) for resource in resources
    )

    def validator(uri: str) -> Draft202012Validator:
        schema = registry.contents(uri)
        return Draft202012Validator(schema, registry=registry, format_checker=_FORMATS)

    compiled = jsonschema_rs.Registry([(r.contents["$id"], r.contents) for r in resources])

    def fast(uri: str) -> jsonschema_rs.Validator:
        return jsonschema_rs.validator_for(
            registry.contents(uri), registry=compiled, formats=_FAST_FORMATS, validate_formats=True
        )

    return _Catalog(
        registry=registry,
        envelope=validator(ENVELOPE_SCHEMA_URI),
        payloads={name: validator(schema_uri(name)) for name in KNOWN_EVENT_TYPES},
        fast_envelope=fast(ENVELOPE_SCHEMA_URI),
        fast_payloads={name: fast(schema_uri(name)) for name in KNOWN_EVENT_TYPES},
    )


def _never_raising(check: Any) -> Any:
    """A format check as the compiled validator calls it: a bool, never an exception."""

    def checked(value: object) -> bool:
        try:
            return bool(check(value))
        except ValueError:
            return False

    return checked


_FAST_FORMATS = {"date-time": _never_raising(_is_date_time), "email": _never_raising(_is_email)}


def _conforms(catalog: _Catalog, instance: dict[str, Any], *, payload: bool) -> bool:
    """The compiled gate: True only if the envelope (and, with ``payload``, ``data`` and the
    partition-key rule) certainly conform; anything unexpected is a "no" for jsonschema."""
    try:
        if not catalog.fast_envelope.is_valid(instance):
            return False
        if not payload:
            return True
        event_type, data = instance.get("type"), instance.get("data")
        validator = catalog.fast_payloads.get(event_type) if isinstance(event_type, str) else None
        return (
            validator is not None
            and isinstance(data, dict)
            and validator.is_valid(data)
            and not _subject_errors(instance)
        )
    except Exception:  # noqa: BLE001 - a value the compiled validator cannot take: ask jsonschema
        return False


def schema_registry() -> Registry[Any]:
    """The registry of all schemas by ``$id`` (for tools and tests that resolve ``$ref``)."""
    return _catalog().registry


def validate_envelope_dict(raw: Mapping[str, Any]) -> None:
    """Check a decoded CloudEvent's envelope attributes only (``data`` is not looked into)."""
    catalog, instance = _catalog(), _as_object(raw)
    if _conforms(catalog, instance, payload=False):
        return
    errors = _schema_errors(catalog.envelope, instance, ())
    if errors:
        raise ContractError(errors)


def validate_event_dict(raw: Mapping[str, Any]) -> None:
    """Check a decoded CloudEvent completely: envelope, known ``type``, ``data``, ``subject``."""
    catalog = _catalog()
    instance = _as_object(raw)
    if _conforms(catalog, instance, payload=True):
        return
    errors = _schema_errors(catalog.envelope, instance, ())
    event_type = instance.get("type")
    payload_validator = catalog.payloads.get(event_type) if isinstance(event_type, str) else None
    if payload_validator is None:
        if not any(error.pointer == "/type" for error in errors):
            errors.append(FieldError("/type", "is not a known LeadRelay event type"))
    elif isinstance(instance.get("data"), dict):
        errors.extend(_schema_errors(payload_validator, instance["data"], ("data",)))
        errors.extend(_subject_errors(instance))
    elif "data" not in instance:
        errors.append(FieldError("/data", "is required"))
    if errors:
        raise ContractError(errors)


def validate_event(event: CloudEvent) -> None:
    """Check an event before it is published or after it is consumed; ``ContractError`` if bad."""
    validate_event_dict(event.to_dict())


def validate_outgoing(event: CloudEvent) -> bytes:
    """Check an event this system produces before it is queued or sent, against the schemas
    themselves (the compiled gate makes the check of a valid event cheap), and return its
    message value: the event is dumped once, and the bytes sent are those of the checked
    dict (the same bytes as :meth:`CloudEvent.to_bytes`)."""
    document = event.to_dict()
    validate_event_dict(document)
    return orjson.dumps(document)


def _as_object(raw: object) -> dict[str, Any]:
    """A batch may hold anything; refuse a non-object with a pointer instead of a TypeError."""
    if not isinstance(raw, Mapping):
        raise ContractError([FieldError("", "must be a JSON object (a CloudEvent)")])
    return dict(raw)


def _subject_errors(instance: Mapping[str, Any]) -> list[FieldError]:
    """The subject is the partition key: the lead key, for anonymous activity the visitor id,
    for a roster event (no lead) the rep id.

    A mis-keyed event would land on another partition and overtake its lead's earlier events.
    """
    data = instance["data"]
    roster = instance.get("type") == EventType.REP_UPDATED.value
    for field in ("rep_id",) if roster else ("lead_key", "anonymous_id"):
        key = data.get(field)
        if isinstance(key, str):
            if instance.get("subject") != key:
                return [FieldError("/subject", f"must equal /data/{field} (the partition key)")]
            return []
    return []


def _schema_errors(
    validator: Draft202012Validator, instance: Any, prefix: tuple[str, ...]
) -> list[FieldError]:
    """All violations, de-duplicated, sorted by pointer."""
    found = {
        field for error in validator.iter_errors(instance) for field in _describe(error, prefix)
    }
    return sorted(found, key=lambda field_error: (field_error.pointer, field_error.message))


def _describe(error: ValidationError, prefix: tuple[str, ...]) -> Iterator[FieldError]:
    """Name the exact field, and say what was expected without echoing the value."""
    path = (*prefix, *error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        for name in _names(error.validator_value):
            if name not in instance:
                yield FieldError(json_pointer((*path, name)), "is required")
    elif error.validator == "additionalProperties" and isinstance(instance, dict):
        for name in _unexpected(instance, error.schema):
            yield FieldError(json_pointer((*path, name)), "is not an allowed property")
    elif "propertyNames" in error.relative_schema_path and isinstance(instance, str):
        yield FieldError(json_pointer((*path, instance)), f"name {_expected(error)}")
    else:
        yield FieldError(json_pointer(path), _expected(error))


def _unexpected(instance: Mapping[str, Any], schema: Any) -> Iterable[str]:
    allowed = schema.get("properties", {}) if isinstance(schema, dict) else {}
    patterns = schema.get("patternProperties", {}) if isinstance(schema, dict) else {}
    return [
        name
        for name in instance
        if name not in allowed and not any(re.search(p, name) for p in patterns)
    ]


_EXPECTED = {
    "type": "must be of type {}",
    "enum": "must be one of: {}",
    "const": "must be {}",
    "pattern": "must match the pattern {}",
    "format": "must be a valid {}",
    "minLength": "must be at least {} characters long",
    "maxLength": "must be at most {} characters long",
    "minimum": "must be >= {}",
    "maximum": "must be <= {}",
    "minItems": "must have at least {} items",
    "maxItems": "must have at most {} items",
    "maxProperties": "must have at most {} properties",
    "uniqueItems": "must not contain duplicates",
}


def _expected(error: ValidationError) -> str:
    """What the constraint wanted, from the schema alone (the value may be personal data)."""
    keyword, value = str(error.validator), error.validator_value
    if keyword == "anyOf" and _all_required_alternatives(value):
        names = [name for alternative in value for name in alternative["required"]]
        return "needs at least one of " + ", ".join(names)
    template = _EXPECTED.get(keyword)
    if template is None:
        return f"violates the {keyword} constraint"
    if keyword == "const":
        value = json.dumps(value)
    elif isinstance(value, list):
        value = ", ".join(json.dumps(item) for item in value)
    return template.format(value)


def _names(value: Any) -> list[str]:
    return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []


def _all_required_alternatives(alternatives: object) -> TypeGuard[list[dict[str, list[str]]]]:
    """True for ``anyOf: [{required: [a]}, {required: [b]}]``: "at least one of a, b"."""
    return isinstance(alternatives, list) and all(
        isinstance(alt, dict) and set(alt) == {"required"} for alt in alternatives
    )
