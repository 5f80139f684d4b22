"""Expiry of parked sales activity whose assignment never came.

Activity is parked when it names an assignment the monitor has no clocks for yet (see
``handlers.SlaHandlers.on_sales_activity``). Usually the assignment follows within seconds or, after
monitor downtime, within hours. Activity still waiting after ``PARKED_ACTIVITY_KEPT`` is about a
lead LeadRelay never assigned (a CRM reports on every lead it holds), so it is deleted, counted
and logged as a warning rather than kept forever (the kernel's
:class:`~leadrelay.store.sweep.AgeSweep`, a batch per transaction).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from leadrelay.store.sweep import AgeSweep
from leadrelay.store.unit_of_work import Store
from services.sla_monitor.metrics import SlaMetrics
from services.sla_monitor.repository import expire_parked

PARKED_ACTIVITY_KEPT = timedelta(days=7)


def parked_activity_expiry(store: Store, metrics: SlaMetrics, *, every_seconds: float) -> AgeSweep:
    """Deletes activity parked longer than :data:`PARKED_ACTIVITY_KEPT`, every ``every_seconds``."""
    return AgeSweep(
        store,
        name="parked activity expiry",
        what="sales activities parked with no assignment of theirs arriving",
        delete_old=expire_parked,
        max_age=PARKED_ACTIVITY_KEPT,
        on_deleted=metrics.parked_activity.labels("expired").inc,
        every_seconds=every_seconds,
        log_level=logging.WARNING,
    )
