"""The archive's Alembic migrations: its own branch, from the runtime's ``0001``."""

from pathlib import Path
from typing import Final

LOCATION: Final = Path(__file__).resolve().parent
"""This directory, as an Alembic ``version_locations`` entry."""
