"""The retention sweep: deletes visitors who never identified once idle for the retention.

Leads forget old activity as they are scored (``remembered`` in the domain), but a visitor who
never fills a form is never scored again, so only a sweep can let go of what it did. It is the
kernel's :class:`~leadrelay.store.sweep.AgeSweep`, deleting in small transactions so that it
never holds up the consume loop for long.
"""

from __future__ import annotations

from datetime import timedelta

from leadrelay.store.sweep import AgeSweep
from leadrelay.store.unit_of_work import Store
from services.scoring.metrics import ScoringMetrics
from services.scoring.repository import forget_idle_visitors


def visitor_retention(
    store: Store, retention: timedelta, metrics: ScoringMetrics, *, every_seconds: float
) -> AgeSweep:
    """Forgets visitors idle for ``retention``, every ``every_seconds``."""
    return AgeSweep(
        store,
        name="visitor retention sweep",
        what="idle unidentified visitors",
        delete_old=forget_idle_visitors,
        max_age=retention,
        on_deleted=metrics.visitors_forgotten.inc,
        every_seconds=every_seconds,
    )
