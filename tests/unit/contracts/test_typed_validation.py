"""``validate_typed`` (the consume loop's and the outbox's check) gives the JSON Schemas' verdict.

Every example passes both checks; every mutation the schemas refuse, the typed check refuses at
the same pointers, envelope attributes and coercions pydantic would otherwise allow included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.errors import ContractError
from leadrelay.contracts.schemas import (
    ENVELOPE_KEYWORDS,
    ENVELOPE_SCHEMA_URI,
    schema_registry,
    validate_event,
    validate_typed,
)

from .support import EVENT_TYPES_WITH_EXAMPLES, example
from .test_validation import MUTATIONS

Mutation = Callable[[dict[str, Any]], None]


def _verdicts(raw: dict[str, Any]) -> tuple[set[str] | None, set[str] | None]:
    """The pointers each check refuses (None: accepted)."""
    event = CloudEvent.from_dict(raw)
    found: list[set[str] | None] = []
    for check in (validate_event, validate_typed):
        try:
            check(event)
        except ContractError as refused:
            found.append({e.pointer for e in refused.errors})
        else:
            found.append(None)
    return found[0], found[1]


@pytest.mark.parametrize("event_type", EVENT_TYPES_WITH_EXAMPLES)
def test_every_example_passes_the_typed_check(event_type: str) -> None:
    assert _verdicts(example(event_type)) == (None, None)


@pytest.mark.parametrize(("event_type", "mutate", "pointer"), MUTATIONS)
def test_payload_mutations_are_refused_at_the_same_pointer(
    event_type: str, mutate: Mutation, pointer: str
) -> None:
    raw = example(event_type)
    mutate(raw["data"])
    assert _verdicts(raw) == ({pointer}, {pointer})


def _set(path: str, value: object) -> Mutation:
    *parents, leaf = path.split("/")

    def mutate(raw: dict[str, Any]) -> None:
        node = raw
        for name in parents:
            node = node[int(name)] if isinstance(node, list) else node[name]
        node[leaf] = value

    return mutate


FORM = "leadrelay.form_submitted.v1"
STRICT_AND_ENVELOPE = [
    # coercions pydantic's lax mode would allow, refused by the schema
    (FORM, _set("data/profile/company_size", "8"), "/data/profile/company_size"),
    (FORM, _set("data/profile/company_size", True), "/data/profile/company_size"),
    ("leadrelay.form_submitted.v1", _set("data/lead_key", 42), "/data/lead_key"),
    ("leadrelay.form_submitted.v1", _set("data/occurred_at", 1714641245), "/data/occurred_at"),
    ("leadrelay.form_submitted.v1", _set("data/unexpected", "x"), "/data/unexpected"),
    ("leadrelay.lead_scored.v1", _set("data/fit_score", "12"), "/data/fit_score"),
    # the partition key
    ("leadrelay.form_submitted.v1", _set("subject", "lk_someone_else"), "/subject"),
    # envelope bounds of cloudevent.json
    ("leadrelay.form_submitted.v1", _set("id", "x" * 201), "/id"),
    ("leadrelay.form_submitted.v1", _set("source", "s" * 501), "/source"),
    ("leadrelay.form_submitted.v1", _set("datacontenttype", "text/plain"), "/datacontenttype"),
    ("leadrelay.form_submitted.v1", _set("dataschema", ""), "/dataschema"),
    ("leadrelay.form_submitted.v1", _set("traceparent", ["not", "a", "scalar"]), "/traceparent"),
    ("leadrelay.form_submitted.v1", _set("Trace_Parent", "00-abc"), "/Trace_Parent"),
    ("leadrelay.form_submitted.v1", _set("type", "leadrelay.unknown.v1"), "/type"),
]  # fmt: skip


@pytest.mark.parametrize(("event_type", "mutate", "pointer"), STRICT_AND_ENVELOPE)
def test_strict_types_and_envelope_bounds_are_refused_at_the_same_pointer(
    event_type: str, mutate: Mutation, pointer: str
) -> None:
    raw = example(event_type)
    mutate(raw)
    by_schema, by_typed = _verdicts(raw)
    assert by_schema is not None
    assert pointer in by_schema
    assert by_typed == by_schema


def test_extension_attributes_within_the_schema_pass_both() -> None:
    raw = example("leadrelay.form_submitted.v1")
    raw.update(traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", hops=2)
    assert _verdicts(raw) == (None, None)


def test_the_envelope_schema_uses_only_the_keywords_the_typed_check_reads() -> None:
    schema = schema_registry().contents(ENVELOPE_SCHEMA_URI)
    for name, node in schema["properties"].items():
        assert set(node) <= ENVELOPE_KEYWORDS, name
        assert node.get("format", "date-time") == "date-time", name
    assert set(schema["propertyNames"]) == {"pattern"}
    assert schema["additionalProperties"]["type"] == ["string", "number", "boolean"]
