"""The pydantic models and the JSON Schemas describe the same payloads, field for field."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from pydantic import AwareDatetime, BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from leadrelay.contracts import (
    EVENT_MODELS,
    KNOWN_EVENT_TYPES,
    CloudEvent,
    new_event,
    parse_data,
    schema_uri,
    validate_event,
)
from leadrelay.contracts.schemas import schema_registry

from .support import example


def _resolve(node: dict[str, Any], resolver: Any) -> tuple[dict[str, Any], Any]:
    """Follow ``$ref`` (within or across files) to the schema that actually constrains."""
    while "$ref" in node:
        resolved = resolver.lookup(node["$ref"])
        node, resolver = resolved.contents, resolved.resolver
    return node, resolver


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """Strip ``Optional``/``Annotated``; report whether it was a ``tuple[X, ...]`` array."""
    is_array = False
    while True:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Annotated:
            annotation = args[0]
        elif origin in (typing.Union, types.UnionType) and type(None) in args:
            (annotation,) = [arg for arg in args if arg is not type(None)]
        elif origin is tuple:
            annotation, is_array = args[0], True
        else:
            return annotation, is_array


def _assert_same_object(
    model: type[BaseModel], node: dict[str, Any], resolver: Any, where: str
) -> None:
    node, resolver = _resolve(node, resolver)
    properties = node["properties"]
    assert set(model.model_fields) == set(properties), where
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    assert required == set(node.get("required", [])), where
    assert node.get("additionalProperties") is False, where
    for name, field in model.model_fields.items():
        _assert_same_field(field.annotation, properties[name], resolver, f"{where}/{name}")
        _assert_same_limits(field, properties[name], resolver, f"{where}/{name}")


_LIMITS = ("type", "minLength", "maxLength", "pattern", "minimum", "maximum",
           "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems")  # fmt: skip


def _limits(node: dict[str, Any]) -> dict[str, Any]:
    """The JSON-Schema keywords that bound a scalar (or an array of scalars), normalised."""
    found = {key: node[key] for key in _LIMITS if key in node}
    if isinstance(found.get("type"), list):
        (found["type"],) = [t for t in found["type"] if t != "null"]
    if found.get("minLength") == 0:
        del found["minLength"]  # the same as no lower bound
    if "enum" in node and "type" not in node:
        found["type"] = "string"  # our enums are all of strings; checked against Literal above
    return found


def _assert_same_limits(field: FieldInfo, node: dict[str, Any], resolver: Any, where: str) -> None:
    """Types and bounds agree (a str where the schema says integer, a different maxLength...).

    The model's side is pydantic's own JSON Schema for the field; nested models are compared
    field by field by ``_assert_same_object`` instead.
    """
    annotation = field.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    inner, _ = _unwrap(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return
    bounded: Any = typing.Annotated[annotation, *field.metadata] if field.metadata else annotation
    model_side = TypeAdapter[Any](bounded).json_schema()
    node, resolver = _resolve(node, resolver)
    assert _limits(model_side) == _limits(node), where
    if "items" in model_side:
        items, _ = _resolve(node["items"], resolver)
        assert _limits(model_side["items"]) == _limits(items), f"{where}[]"


def _assert_same_field(annotation: Any, node: dict[str, Any], resolver: Any, where: str) -> None:
    inner, is_array = _unwrap(annotation)
    node, resolver = _resolve(node, resolver)
    if is_array:
        assert node["type"] == "array", where
        node, resolver = _resolve(node["items"], resolver)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        _assert_same_object(inner, node, resolver, where)
    elif typing.get_origin(inner) is typing.Literal:
        assert set(typing.get_args(inner)) == set(node["enum"]), where
    elif inner is AwareDatetime:
        assert node.get("format") == "date-time", where
    elif "enum" in node or node.get("format") == "date-time":
        pytest.fail(f"{where}: the schema constrains more than the model does")


@pytest.mark.parametrize("event_type", sorted(KNOWN_EVENT_TYPES))
def test_model_fields_and_required_ness_match_the_schema_at_every_depth(event_type: str) -> None:
    uri = schema_uri(event_type)
    resolver = schema_registry().resolver(base_uri=uri)
    _assert_same_object(EVENT_MODELS[event_type], {"$ref": uri}, resolver, event_type)


@pytest.mark.parametrize("event_type", sorted(KNOWN_EVENT_TYPES))
def test_example_parses_into_its_model_and_round_trips_through_the_schema(event_type: str) -> None:
    raw = example(event_type)
    event = CloudEvent.from_dict(raw)
    validate_event(event)
    payload = parse_data(event)
    assert type(payload) is EVENT_MODELS[event_type]

    rebuilt = new_event(
        event_type, event.source, payload, subject=event.subject, id=event.id, time=event.time
    )
    validate_event(rebuilt)
    again = CloudEvent.from_bytes(rebuilt.to_bytes())
    assert again == rebuilt
    assert parse_data(again) == payload
    assert again.data == raw["data"]
