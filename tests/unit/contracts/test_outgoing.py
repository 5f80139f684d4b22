"""What we publish is checked by the fast typed models, with the same verdicts as the schemas."""

from __future__ import annotations

import json

import pytest

from leadrelay.contracts.envelope import CloudEvent
from leadrelay.contracts.errors import ContractError
from leadrelay.contracts.schemas import schemas_dir, validate_event, validate_outgoing
from leadrelay.contracts.topics import KNOWN_EVENT_TYPES


def example(event_type: str) -> CloudEvent:
    path = schemas_dir() / "examples" / f"{event_type}.json"
    return CloudEvent.from_dict(json.loads(path.read_text()))


@pytest.mark.parametrize("event_type", sorted(KNOWN_EVENT_TYPES))
def test_every_example_passes_both_checks(event_type: str) -> None:
    event = example(event_type)
    validate_event(event)
    assert validate_outgoing(event) == event.to_bytes()  # the checked dump is what is sent


def test_a_mis_keyed_event_is_refused_before_it_is_published() -> None:
    event = example("leadrelay.lead_scored.v1").model_copy(update={"subject": "lk_someone_else"})
    with pytest.raises(ContractError) as refused:
        validate_outgoing(event)
    assert [e.pointer for e in refused.value.errors] == ["/subject"]


@pytest.mark.parametrize(("field", "value"), [("grade", "E"), ("fit_score", "high")])
def test_a_payload_the_schema_refuses_is_refused_at_the_same_pointer(
    field: str, value: object
) -> None:
    good = example("leadrelay.lead_scored.v1")
    bad = good.model_copy(update={"data": {**good.data, field: value}})
    with pytest.raises(ContractError) as by_schema:
        validate_event(bad)
    with pytest.raises(ContractError) as by_model:
        validate_outgoing(bad)
    assert {e.pointer for e in by_model.value.errors} == {e.pointer for e in by_schema.value.errors}
