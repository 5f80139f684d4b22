"""Values Python's JSON decoder takes but no event can carry are named by pointer, never shown."""

from __future__ import annotations

import json

from leadrelay.contracts.errors import FieldError
from services.ingest.domain.json_values import (
    MAX_DEPTH,
    NAME_NOT_TEXT,
    NOT_FINITE,
    NOT_TEXT,
    TOO_BIG,
    TOO_DEEP,
    unrepresentable,
)


def test_each_unrepresentable_value_is_named_in_document_order() -> None:
    body = json.loads(
        '{"a": "\\ud800x", "b": [1, 1e400, -1e400], "c": {"n": 9007199254740993}, "ok": 1.5}'
    )
    assert unrepresentable(body) == [
        FieldError("/a", NOT_TEXT),
        FieldError("/b/1", NOT_FINITE),
        FieldError("/b/2", NOT_FINITE),
        FieldError("/c/n", TOO_BIG),
    ]


def test_a_member_name_that_is_not_text_is_named_by_its_parent() -> None:
    assert unrepresentable(json.loads('{"data": {"\\udc00": 1}}')) == [
        FieldError("/data", NAME_NOT_TEXT)
    ]


def test_nesting_is_bounded_without_recursion() -> None:
    deep: object = "leaf"
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    [error] = unrepresentable(deep)
    assert error.message == TOO_DEEP
    assert error.pointer == "/0" * MAX_DEPTH


def test_ordinary_json_passes() -> None:
    assert unrepresentable({"s": "Grüße ✓", "n": 2**53 - 1, "f": 1e308, "b": True, "z": None}) == []
