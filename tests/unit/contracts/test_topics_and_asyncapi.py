"""The topic table in code, and the AsyncAPI document integrators read, never disagree."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml
from jsonschema import Draft202012Validator

from leadrelay.contracts import (
    KNOWN_EVENT_TYPES,
    TOPIC_EVENT_TYPES,
    EventType,
    Topic,
    topic_for_event_type,
    topic_name,
)
from leadrelay.contracts.envelope import SCHEMA_BASE_URI
from leadrelay.contracts.schemas import schema_registry, schemas_dir

from .support import example

SCHEMA_FORMAT = "application/schema+json;version=draft-2020-12"


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((schemas_dir() / "asyncapi.yaml").read_text())
    return document


def _follow(document: dict[str, Any], ref: str) -> Any:
    """Resolve a local ``#/a/b`` reference inside the AsyncAPI document."""
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _channel_messages(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """address -> {message name: message} for every channel."""
    return {
        channel["address"]: {
            _follow(document, ref["$ref"])["name"]: _follow(document, ref["$ref"])
            for ref in channel["messages"].values()
        }
        for channel in document["channels"].values()
    }


def test_topic_names_use_the_prefix() -> None:
    assert topic_name(Topic.WEB_ACTIVITY) == "leadrelay.web-activity"
    assert topic_name(Topic.DEAD_LETTER, prefix="acme.") == "acme.dead-letter"


def test_every_event_type_travels_on_exactly_one_topic() -> None:
    placed = [t for types in TOPIC_EVENT_TYPES.values() for t in types]
    assert sorted(placed) == sorted(KNOWN_EVENT_TYPES)
    assert topic_for_event_type("leadrelay.lead_reassignment_requested.v1") is Topic.ASSIGNMENTS
    with pytest.raises(LookupError):
        topic_for_event_type("leadrelay.unknown.v1")


def test_asyncapi_channels_and_messages_equal_the_topic_table(asyncapi: dict[str, Any]) -> None:
    documented = {
        address: {name for name, message in messages.items() if name in KNOWN_EVENT_TYPES}
        for address, messages in _channel_messages(asyncapi).items()
    }
    expected = {topic_name(topic): set(types) for topic, types in TOPIC_EVENT_TYPES.items()}
    assert documented == expected
    dead_letter = _channel_messages(asyncapi)[topic_name(Topic.DEAD_LETTER)]
    assert list(dead_letter) == ["dead_letter"]
    assert len(asyncapi["components"]["messages"]) == len(KNOWN_EVENT_TYPES) + 1


def _payload_validator(message: dict[str, Any]) -> Draft202012Validator:
    payload = message["payload"]
    assert payload["schemaFormat"] == SCHEMA_FORMAT
    # the document sits next to the schemas, so its relative $refs resolve against their base
    schema = {"$id": f"{SCHEMA_BASE_URI}asyncapi-payload.json", **payload["schema"]}
    return Draft202012Validator(schema, registry=schema_registry())


@pytest.mark.parametrize("event_type", sorted(KNOWN_EVENT_TYPES))
def test_asyncapi_message_payload_is_the_event_schema_and_accepts_the_example(
    asyncapi: dict[str, Any], event_type: str
) -> None:
    address = topic_name(topic_for_event_type(event_type))
    message = _channel_messages(asyncapi)[address][event_type]
    data_ref = message["payload"]["schema"]["allOf"][1]["properties"]["data"]["$ref"]
    assert data_ref == f"./{event_type}.json"
    validator = _payload_validator(message)
    assert validator.is_valid(example(event_type))
    wrong_type = example(event_type) | {"type": "leadrelay.other.v1"}
    assert not validator.is_valid(wrong_type)
    key = message["bindings"]["kafka"]["key"]["description"]
    assert ("rep id" if event_type == EventType.REP_UPDATED else "lead key") in key


def test_operations_reference_their_own_channel_and_its_messages(asyncapi: dict[str, Any]) -> None:
    sent: set[str] = set()
    for operation_id, operation in asyncapi["operations"].items():
        assert operation["action"] in {"send", "receive"}, operation_id
        channel_ref = operation["channel"]["$ref"]
        channel = _follow(asyncapi, channel_ref)
        for ref in operation["messages"]:
            assert ref["$ref"].startswith(f"{channel_ref}/messages/"), operation_id
            message = _follow(asyncapi, _follow(asyncapi, ref["$ref"])["$ref"])
            if operation["action"] == "send":
                sent.add(message["name"])
        assert channel["messages"], operation_id
    assert sent == KNOWN_EVENT_TYPES | {"dead_letter"}


def test_dead_letter_headers_documented_are_the_ones_the_runtime_writes(
    asyncapi: dict[str, Any],
) -> None:
    from leadrelay.runtime.consumer import dead_letter_headers  # the runtime is not pure
    from leadrelay.runtime.failure import DeadLetterReason

    record = SimpleNamespace(topic="leadrelay.assignments", partition=3, offset=42)
    written = dead_letter_headers(
        cast(Any, record), DeadLetterReason.SCHEMA_VIOLATION, ValueError("bad"), "handoff"
    )
    headers = asyncapi["components"]["messages"]["deadLetter"]["headers"]
    assert {name for name, _ in written} == set(headers["properties"]) == set(headers["required"])
    reasons = set(headers["properties"]["dlq.error.type"]["enum"])
    assert reasons == {reason.value for reason in DeadLetterReason}
