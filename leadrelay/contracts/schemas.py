"""Validation of events against the JSON Schemas in ``schemas/`` (draft 2020-12).

The schemas are the published contract, so the runtime validates against the very files
integrators read rather than against a copy derived from the models. They are loaded lazily,
once, into a ``referencing.Registry`` built from the folder: ``$ref`` between files resolves
without any network access.
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

import orjson
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from pydantic import ValidationError as PydanticValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from leadrelay.contracts.envelope import RFC3339, SCHEMA_BASE_URI, CloudEvent, schema_uri
from leadrelay.contracts.errors import ContractError, FieldError, from_pydantic, json_pointer
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
    "validate_typed",
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

    return _Catalog(
        registry=registry,
        envelope=validator(ENVELOPE_SCHEMA_URI),
        payloads={name: validator(schema_uri(name)) for name in KNOWN_EVENT_TYPES},
    )


def schema_registry() -> Registry[Any]:
    """The registry of all schemas by ``$id`` (for tools and tests that resolve ``$ref``)."""
    return _catalog().registry


def validate_envelope_dict(raw: Mapping[str, Any]) -> None:
    """Check a decoded CloudEvent's envelope attributes only (``data`` is not looked into)."""
    errors = _schema_errors(_catalog().envelope, _as_object(raw), ())
    if errors:
        raise ContractError(errors)


def validate_event_dict(raw: Mapping[str, Any]) -> None:
    """Check a decoded CloudEvent completely: envelope, known ``type``, ``data``, ``subject``."""
    catalog = _catalog()
    instance = _as_object(raw)
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


def validate_outgoing(event: CloudEvent) -> None:
    """Check an event this system produces before it is queued: :func:`validate_typed`."""
    validate_typed(event)


def validate_typed(event: CloudEvent) -> None:
    """Check an event as :func:`validate_event` does, at a fraction of the cost: the consume
    loop's check of every message and the outbox's of every event queued.

    The envelope is checked against the bounds read from ``cloudevent.json`` itself; ``data``
    by the payload model of its type in pydantic's strict JSON mode (no coercion: ``"5"`` is
    not an integer, as in the schema), the models being kept equal to the schemas by the
    contract tests (``tests/unit/contracts``, which also compare both checks' verdicts); then
    the partition-key rule. ``ContractError`` names every bad field.
    """
    from leadrelay.contracts.events import EVENT_MODELS

    errors = _envelope_errors(event)
    model = EVENT_MODELS.get(event.type)
    if model is None:
        errors.append(FieldError("/type", "is not a known LeadRelay event type"))
        raise ContractError(errors)
    try:
        model.model_validate_json(orjson.dumps(event.data), strict=True)
    except PydanticValidationError as error:
        errors.extend(from_pydantic(error, ("data",)).errors)
    except orjson.JSONEncodeError:
        errors.append(FieldError("/data", "must be a JSON object"))
    errors.extend(
        _subject_errors({"type": event.type, "subject": event.subject, "data": event.data})
    )
    if errors:
        raise ContractError(sorted(set(errors), key=lambda e: (e.pointer, e.message)))


ENVELOPE_KEYWORDS = frozenset(
    {"type", "const", "minLength", "maxLength", "pattern", "format", "description"}
)
"""The keywords :func:`validate_typed` reads from ``cloudevent.json``'s properties; a test
refuses an envelope schema that uses any other (it would be ignored)."""


@dataclass(frozen=True)
class _Bounds:
    """What ``cloudevent.json`` asks of a string attribute (or of every attribute's name)."""

    const: object = None
    min_length: int = 0
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> _Bounds:
        pattern = node.get("pattern")
        return cls(
            node.get("const"),
            node.get("minLength", 0),
            node.get("maxLength"),
            re.compile(pattern) if pattern is not None else None,
        )

    def violation(self, value: str) -> str | None:
        if self.const is not None and value != self.const:
            return f"must be {json.dumps(self.const)}"
        if len(value) < self.min_length:
            return f"must be at least {self.min_length} characters long"
        if self.max_length is not None and len(value) > self.max_length:
            return f"must be at most {self.max_length} characters long"
        if self.pattern is not None and self.pattern.search(value) is None:
            return f"must match the pattern {json.dumps(self.pattern.pattern)}"
        return None


@functools.cache
def _envelope_bounds() -> tuple[dict[str, _Bounds], _Bounds]:
    """Each string attribute's bounds and the attribute names' bounds, from the schema file."""
    schema = _catalog().registry.contents(ENVELOPE_SCHEMA_URI)
    attributes = {
        name: _Bounds.of(node)
        for name, node in schema["properties"].items()
        if node.get("type") == "string" or "const" in node
    }
    return attributes, _Bounds.of(schema.get("propertyNames", {}))


_EXTENSION_VALUE = (str, int, float, bool)
"""``additionalProperties``' types: string, number, boolean."""


def _envelope_errors(event: CloudEvent) -> list[FieldError]:
    """The envelope's violations of ``cloudevent.json``. The model already guarantees the
    required attributes, a string for each and an aware ``time``."""
    attributes, names = _envelope_bounds()
    errors: list[FieldError] = []
    for name, bounds in attributes.items():
        value = getattr(event, name, None)
        if isinstance(value, str) and (problem := bounds.violation(value)) is not None:
            errors.append(FieldError(json_pointer((name,)), problem))
    for name, value in (event.model_extra or {}).items():
        if (problem := names.violation(name)) is not None:
            errors.append(FieldError(json_pointer((name,)), f"name {problem}"))
        elif not isinstance(value, _EXTENSION_VALUE):
            errors.append(
                FieldError(json_pointer((name,)), "must be of type string, number, boolean")
            )
    return errors


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
