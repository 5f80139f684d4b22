"""What Python's JSON decoder accepts but no event may carry, found before any mapping runs.

``json.loads`` turns ``"\\ud800"`` into a lone UTF-16 surrogate (a ``str`` that cannot be
encoded as UTF-8, so the event could never be produced) and ``1e400`` into ``inf`` (which
JSON cannot express on the way out). Integers beyond ±2^53 lose precision in every
JavaScript and double-based consumer (I-JSON, RFC 7493), and deep nesting costs every
consumer stack depth. Each such value is named by its JSON pointer; the value itself is never
repeated. A member name that is not text is named by its parent, since the pointer would
have to contain it.
"""

from __future__ import annotations

import math
from typing import Any

from leadrelay.contracts.errors import FieldError, json_pointer

MAX_DEPTH = 32
"""Objects and arrays nested deeper than this are refused (no contract needs more than 4)."""
MAX_SAFE_INTEGER = 2**53 - 1

NOT_TEXT = "must be Unicode text (a lone UTF-16 surrogate is not)"
NOT_FINITE = "must be a finite number that fits a double"
TOO_BIG = f"must be an integer within ±{MAX_SAFE_INTEGER} (I-JSON)"
NAME_NOT_TEXT = "has a member name that is not Unicode text (a lone UTF-16 surrogate)"
TOO_DEEP = f"is nested deeper than {MAX_DEPTH} levels"


def unrepresentable(value: Any) -> list[FieldError]:
    """Every value of a decoded body that cannot travel as an event, in document order."""
    errors: list[FieldError] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        problem = _scalar_problem(item)
        if problem is not None:
            errors.append(FieldError(json_pointer(path), problem))
        elif isinstance(item, dict | list) and len(path) >= MAX_DEPTH:
            errors.append(FieldError(json_pointer(path), TOO_DEEP))
        elif isinstance(item, dict):
            if any(not _is_text(name) for name in item):
                errors.append(FieldError(json_pointer(path), NAME_NOT_TEXT))
            children = [((*path, k), v) for k, v in item.items() if _is_text(k)]
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed([((*path, i), v) for i, v in enumerate(item)]))
    return errors


def _scalar_problem(item: Any) -> str | None:
    if isinstance(item, str):
        return None if _is_text(item) else NOT_TEXT
    if isinstance(item, bool):
        return None
    if isinstance(item, float):
        return None if math.isfinite(item) else NOT_FINITE
    if isinstance(item, int):
        return None if abs(item) <= MAX_SAFE_INTEGER else TOO_BIG
    return None


def _is_text(text: str) -> bool:
    """False for a string holding a surrogate code point (it has no UTF-8 encoding)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
