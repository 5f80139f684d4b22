"""LeadRelay's event contracts: topics, the CloudEvent envelope, payload models and validation.

Pure: depends only on pydantic, jsonschema, referencing, jsonschema-rs, orjson and the standard
library. The JSON Schemas in ``schemas/`` are the published contract; the models here are checked
against them by tests.
"""

from leadrelay.contracts.envelope import CloudEvent, new_event, schema_uri, stable_event_id
from leadrelay.contracts.errors import ContractError, FieldError
from leadrelay.contracts.events import EVENT_MODELS, EventPayload, parse_as, parse_data
from leadrelay.contracts.schemas import validate_envelope_dict, validate_event, validate_event_dict
from leadrelay.contracts.topics import (
    KNOWN_EVENT_TYPES,
    TOPIC_EVENT_TYPES,
    EventType,
    Topic,
    topic_for_event_type,
    topic_name,
)

__all__ = [
    "EVENT_MODELS",
    "KNOWN_EVENT_TYPES",
    "TOPIC_EVENT_TYPES",
    "CloudEvent",
    "ContractError",
    "EventPayload",
    "EventType",
    "FieldError",
    "Topic",
    "new_event",
    "parse_as",
    "parse_data",
    "schema_uri",
    "stable_event_id",
    "topic_for_event_type",
    "topic_name",
    "validate_envelope_dict",
    "validate_event",
    "validate_event_dict",
]
