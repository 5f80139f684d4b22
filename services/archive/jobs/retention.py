"""The retention sweep: deletes archived events once older than ``archive_retention``.

It is the kernel's :class:`~leadrelay.store.sweep.AgeSweep`, deleting in small transactions, so
a first sweep over a large backlog never holds up the consume loops sharing the database.
"""

from __future__ import annotations

from datetime import timedelta

from leadrelay.store.sweep import SWEEP_BATCH, AgeSweep
from leadrelay.store.unit_of_work import Store
from services.archive.metrics import ArchiveMetrics
from services.archive.repository import forget_received_before


def archive_retention(
    store: Store,
    retention: timedelta,
    metrics: ArchiveMetrics,
    *,
    every_seconds: float,
    batch: int = SWEEP_BATCH,
) -> AgeSweep:
    """Forgets events received more than ``retention`` ago, every ``every_seconds``."""
    return AgeSweep(
        store,
        name="archive retention sweep",
        what="archived events",
        delete_old=forget_received_before,
        max_age=retention,
        on_deleted=metrics.events_forgotten.inc,
        every_seconds=every_seconds,
        batch=batch,
    )
