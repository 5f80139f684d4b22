"""Imports every service's table declarations, so ``metadata`` knows the whole schema.

Used where the complete schema matters: the test that compares migrations with declarations.
"""

from leadrelay.store.tables import metadata

# One line per service that declares tables on the shared metadata:
# import services.scoring.tables
# import services.handoff.tables
# import services.sla_monitor.tables

__all__ = ["metadata"]
