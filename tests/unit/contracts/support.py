"""Shared test helpers: the schema files and the example events integrators read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from leadrelay.contracts.schemas import schemas_dir

EVENT_TYPES_WITH_EXAMPLES = sorted(p.stem for p in (schemas_dir() / "examples").glob("*.json"))


def load_json(name: str) -> dict[str, Any]:
    """A file under ``schemas/`` (e.g. ``common.json`` or ``examples/<type>.json``)."""
    loaded: dict[str, Any] = json.loads((schemas_dir() / name).read_text(encoding="utf-8"))
    return loaded


def example(event_type: str) -> dict[str, Any]:
    """A fresh copy of the example CloudEvent for ``event_type``, safe to mutate."""
    return load_json(f"examples/{event_type}.json")


def schema_files() -> list[Path]:
    return sorted(schemas_dir().glob("*.json"))
