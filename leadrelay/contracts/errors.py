"""Contract violations as data: each bad field is named by a JSON pointer.

The HTTP edge turns them into ``application/problem+json``; the Kafka edge puts them in the
``dlq.error.message`` header. Messages therefore never repeat the offending value (it may be an
email address), only what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True)
class FieldError:
    """One bad field: where (a JSON pointer such as ``/data/email``) and what is wrong."""

    pointer: str
    message: str


class ContractError(ValueError):
    """An event (or envelope) does not satisfy its contract; ``errors`` names every bad field."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors)
        super().__init__("; ".join(f"{e.pointer or '/'}: {e.message}" for e in self.errors))


def json_pointer(parts: Iterable[str | int]) -> str:
    """RFC 6901 pointer for a path (``~`` and ``/`` in names are escaped)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def from_pydantic(error: ValidationError, prefix: Sequence[str | int] = ()) -> ContractError:
    """Translate a pydantic error, whose messages never include the input value."""
    return ContractError(
        [FieldError(json_pointer([*prefix, *item["loc"]]), item["msg"]) for item in error.errors()]
    )


class DomainRefusal(Exception):
    """A handler or domain refuses this input for good: the same input will always be refused.

    Raise it (or a subclass) for a deterministic refusal, e.g. an assignment to a rep who is not
    on the roster. The consume loop dead-letters the message at the first failure instead of
    retrying it; the message should say what was expected, never repeat personal data.
    """
