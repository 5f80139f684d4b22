"""The scorecard that ships with LeadRelay, so ``leadrelay up`` scores sensibly with no file.

Kept apart from ``config`` because it reads a packaged file; everything else in the domain is
free of I/O.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from services.scoring.domain.config import Scorecard, load_scorecard

DEFAULT_SCORECARD_RESOURCE = "default_scorecard.yaml"
"""File name inside the ``services.scoring`` package."""
DEFAULT_SCORECARD_FILE = Path(__file__).resolve().parent.parent / DEFAULT_SCORECARD_RESOURCE
"""The shipped ``scorecard:`` section as a path (the composition root reads it as text)."""


def default_scorecard_mapping() -> dict[str, Any]:
    """The mapping under ``scorecard:`` in the shipped file (for composing default definitions)."""
    text = files("services.scoring").joinpath(DEFAULT_SCORECARD_RESOURCE).read_text("utf-8")
    document = yaml.safe_load(text)
    section: dict[str, Any] = document["scorecard"]
    return section


def load_default_scorecard() -> Scorecard:
    return load_scorecard(default_scorecard_mapping())
