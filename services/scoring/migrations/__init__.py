"""The scoring service's Alembic migrations: its own branch, from the runtime's ``0001``.

Revision ids never change, so a database migrated before the files moved here upgrades as before.
"""

from pathlib import Path
from typing import Final

LOCATION: Final = Path(__file__).resolve().parent
"""This directory, as an Alembic ``version_locations`` entry."""
