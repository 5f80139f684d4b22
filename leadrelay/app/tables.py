"""Imports every service's table declarations, so ``metadata`` knows the whole schema.

Used where the complete schema matters: the test that compares migrations with declarations,
and unit tests that ``create_all`` a throwaway database.
"""

import services.archive.tables  # imported for its side effect: tables on metadata
import services.handoff.tables
import services.ingest.tables
import services.reporting.tables
import services.scoring.tables
import services.sla_monitor.tables  # noqa: F401
from leadrelay.store.tables import metadata

__all__ = ["metadata"]
