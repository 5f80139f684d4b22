"""JSON-ready forms of the domain values, for the service's store and its events.

Pydantic reads the dataclasses directly, so the stored shape is the dataclass fields (datetimes
as ISO 8601 with offset, stages and grades as their strings) and needs no hand-written mapper.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter

from services.scoring.domain.model import Activity, LeadState, Score


@cache
def _state_adapter() -> TypeAdapter[LeadState]:
    return TypeAdapter(LeadState)


@cache
def _activities_adapter() -> TypeAdapter[tuple[Activity, ...]]:
    return TypeAdapter(tuple[Activity, ...])


@cache
def _score_adapter() -> TypeAdapter[Score]:
    return TypeAdapter(Score)


def state_json(state: LeadState) -> bytes:
    """The whole state as JSON (what the service stores per lead), written by pydantic's own
    serializer in one pass: a lead's state is rewritten on every event, and building a dict
    only to encode it cost more than the encoding."""
    return _state_adapter().dump_json(state)


def load_state(data: Any) -> LeadState:
    """The inverse of ``state_json``, given the decoded document (as the JSON column reads it);
    raises pydantic's ``ValidationError`` on a bad document."""
    return _state_adapter().validate_python(data)


def dump_score(score: Score) -> dict[str, Any]:
    """A JSON-compatible dict of a score with its breakdown (the body of ``lead_scored``)."""
    dumped: dict[str, Any] = _score_adapter().dump_python(score, mode="json")
    return dumped


def dump_activities(activities: tuple[Activity, ...]) -> list[Any]:
    """JSON-compatible activities (what the service keeps for a visitor not yet identified)."""
    dumped: list[Any] = _activities_adapter().dump_python(activities, mode="json")
    return dumped


def load_activities(data: Any) -> tuple[Activity, ...]:
    """The inverse of ``dump_activities``."""
    return _activities_adapter().validate_python(data)
