"""The schema files themselves: valid 2020-12, one per event type, documented for integrators."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from leadrelay.contracts import KNOWN_EVENT_TYPES, schema_uri
from leadrelay.contracts.schemas import schemas_dir

from .support import EVENT_TYPES_WITH_EXAMPLES, schema_files


@pytest.mark.parametrize("path", schema_files(), ids=lambda p: p.name)
def test_every_schema_is_a_valid_draft_2020_12_schema_with_its_own_id(path: Any) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == schema_uri(path.stem)


def test_there_is_exactly_one_schema_and_one_example_per_event_type() -> None:
    event_schemas = {p.stem for p in schema_files()} - {"common", "cloudevent"}
    assert event_schemas == KNOWN_EVENT_TYPES
    assert set(EVENT_TYPES_WITH_EXAMPLES) == KNOWN_EVENT_TYPES


def _properties(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property definition anywhere in a schema, with a readable location."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties":
                for name, definition in value.items():
                    yield f"{where}/properties/{name}", definition
                    yield from _properties(definition, f"{where}/properties/{name}")
            else:
                yield from _properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _properties(value, f"{where}/{index}")


def test_every_property_carries_a_description_for_integrators() -> None:
    undocumented = [
        f"{path.name}#{where}"
        for path in schema_files()
        for where, definition in _properties(json.loads(path.read_text()), "")
        if not definition.get("description")
    ]
    assert undocumented == []


def test_event_payloads_refuse_unknown_top_level_fields() -> None:
    for event_type in KNOWN_EVENT_TYPES:
        schema = json.loads((schemas_dir() / f"{event_type}.json").read_text())
        assert schema["additionalProperties"] is False, event_type
