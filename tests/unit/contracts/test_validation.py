"""Bad events are refused with the exact field named, so senders and operators can fix them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest

from leadrelay.contracts import (
    CloudEvent,
    ContractError,
    FieldError,
    parse_data,
    validate_envelope_dict,
    validate_event,
    validate_event_dict,
)

from .support import example

EMAIL = "ada@analytical-engines.example"


def _pointers(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ContractError) as caught:
        validate_event_dict(raw)
    return [error.pointer for error in caught.value.errors]


def _sales_activity(**changes: Any) -> dict[str, Any]:
    raw = example("leadrelay.sales_activity.v1")
    raw["data"].update(changes)
    return raw


def test_missing_required_field_is_named_by_its_own_pointer() -> None:
    raw = _sales_activity()
    del raw["data"]["lead_key"]
    assert _pointers(raw) == ["/data/lead_key"]


def test_value_outside_the_shared_vocabulary_is_named_with_the_allowed_values() -> None:
    with pytest.raises(ContractError) as caught:
        validate_event_dict(_sales_activity(outcome="ghosted"))
    (error,) = caught.value.errors
    assert error.pointer == "/data/outcome"
    assert '"contacted"' in error.message
    assert "ghosted" not in error.message


def test_every_bad_field_is_reported_at_once() -> None:
    raw = _sales_activity(outcome="ghosted", colour="blue", occurred_at="yesterday")
    del raw["data"]["rep_id"]
    assert _pointers(raw) == [
        "/data/colour",
        "/data/occurred_at",
        "/data/outcome",
        "/data/rep_id",
    ]


def test_nested_errors_point_into_arrays_and_objects() -> None:
    raw = example("leadrelay.lead_assigned.v1")
    raw["data"]["context"]["breakdown"][1]["axis"] = "vibes"
    raw["data"]["context"]["profile"]["country"] = "de"
    raw["data"]["trace"]["skipped"][0].pop("reason")
    assert _pointers(raw) == [
        "/data/context/breakdown/1/axis",
        "/data/context/profile/country",
        "/data/trace/skipped/0/reason",
    ]


def test_activity_nobody_can_be_attached_to_is_refused_at_data() -> None:
    raw = example("leadrelay.web_activity.v1")
    del raw["data"]["lead_key"], raw["data"]["anonymous_id"]
    with pytest.raises(ContractError) as caught:
        validate_event_dict(raw)
    assert caught.value.errors == [
        FieldError("/data", "needs at least one of lead_key, anonymous_id"),
    ]


def test_anonymous_activity_is_accepted_when_keyed_by_the_visitor() -> None:
    raw = example("leadrelay.web_activity.v1")
    del raw["data"]["lead_key"], raw["data"]["email"]
    raw["subject"] = raw["data"]["anonymous_id"]
    validate_event_dict(raw)


def test_an_event_keyed_by_something_else_than_its_lead_is_refused() -> None:
    raw = example("leadrelay.lead_scored.v1")
    raw["subject"] = "lk_someone_else"
    assert _pointers(raw) == ["/subject"]


def test_unknown_event_type_is_named_at_type() -> None:
    raw = example("leadrelay.lead_scored.v1")
    raw["type"] = "leadrelay.lead_scored.v9"
    assert _pointers(raw) == ["/type"]


def test_error_messages_never_repeat_an_email_address() -> None:
    shouting = EMAIL.upper()
    raw = example("leadrelay.form_submitted.v1")
    raw["data"]["email"] = shouting
    with pytest.raises(ContractError) as caught:
        validate_event_dict(raw)
    assert [e.pointer for e in caught.value.errors] == ["/data/email"]
    assert shouting not in str(caught.value)


@pytest.mark.parametrize(
    ("raw_change", "pointer"),
    [
        ({"specversion": "0.3"}, "/specversion"),
        ({"id": ""}, "/id"),
        ({"time": "2024-02-30T10:00:00Z"}, "/time"),
        ({"time": "2024-05-01T10:00:00"}, "/time"),
        ({"datacontenttype": "text/xml"}, "/datacontenttype"),
        ({"Traceparent": "00-abc"}, "/Traceparent"),
    ],
)
def test_envelope_errors_carry_the_attribute_pointer(
    raw_change: dict[str, Any], pointer: str
) -> None:
    raw = example("leadrelay.lead_recycled.v1") | raw_change
    with pytest.raises(ContractError) as caught:
        validate_envelope_dict(raw)
    assert [e.pointer for e in caught.value.errors] == [pointer]


def test_envelope_check_requires_only_the_cloudevents_core() -> None:
    validate_envelope_dict({"specversion": "1.0", "id": "1", "source": "/x", "type": "t"})
    with pytest.raises(ContractError) as caught:
        validate_envelope_dict({"specversion": "1.0"})
    assert [e.pointer for e in caught.value.errors] == ["/id", "/source", "/type"]


def test_extension_attributes_are_accepted() -> None:
    raw = example("leadrelay.lead_recycled.v1") | {"traceparent": "00-4bf92f35-00f067aa-01"}
    validate_event_dict(raw)


# Each breaks one constraint; the schema and the model must both refuse it, at the same field.
MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "leadrelay.form_submitted.v1",
        lambda d: d["profile"].update(company_size=-1),
        "/data/profile/company_size",
    ),
    (
        "leadrelay.form_submitted.v1",
        lambda d: d["profile"].update(country="Germany"),
        "/data/profile/country",
    ),
    ("leadrelay.form_submitted.v1", lambda d: d.update(source="fax"), "/data/source"),
    ("leadrelay.web_activity.v1", lambda d: d.update(action="Page View"), "/data/action"),
    (
        "leadrelay.web_activity.v1",
        lambda d: d.update(occurred_at="2024-05-01T10:00:00"),
        "/data/occurred_at",
    ),
    ("leadrelay.lead_sales_ready.v1", lambda d: d.update(episode=0), "/data/episode"),
    (
        "leadrelay.lead_scored.v1",
        lambda d: d["breakdown"][2].update(decay_factor=1.5),
        "/data/breakdown/2/decay_factor",
    ),
    ("leadrelay.lead_assigned.v1", lambda d: d.update(route="lottery"), "/data/route"),
    ("leadrelay.sla_escalated.v1", lambda d: d.update(clock="lunch"), "/data/clock"),
    ("leadrelay.lead_recycled.v1", lambda d: d.pop("recycled_at"), "/data/recycled_at"),
]


@pytest.mark.parametrize(("event_type", "mutate", "pointer"), MUTATIONS)
def test_schema_and_model_refuse_the_same_bad_field(
    event_type: str, mutate: Callable[[dict[str, Any]], None], pointer: str
) -> None:
    raw = example(event_type)
    mutate(raw["data"])
    event = CloudEvent.from_dict(raw)
    with pytest.raises(ContractError) as by_schema:
        validate_event(event)
    with pytest.raises(ContractError) as by_model:
        parse_data(event)
    assert [e.pointer for e in by_schema.value.errors] == [pointer]
    assert [e.pointer for e in by_model.value.errors] == [pointer]


def test_a_batch_item_that_is_not_an_object_is_refused_as_a_whole() -> None:
    with pytest.raises(ContractError) as caught:
        validate_event_dict(cast(Any, ["not", "an", "event"]))
    assert caught.value.errors == [FieldError("", "must be a JSON object (a CloudEvent)")]
