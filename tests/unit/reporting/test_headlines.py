"""The headline gauges show the reports' numbers over the trailing window."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry

from leadrelay.app.schema import upgrade_async
from leadrelay.store.engine import create_engine_for
from leadrelay.store.unit_of_work import Store
from services.reporting.messages import fact_of
from services.reporting.metrics import ReportingMetrics
from services.reporting.repository import save_facts
from services.reporting.service import Headlines
from tests.unit.reporting.history import MONDAY, known_history, reports_on


async def test_gauges_equal_the_reports_of_the_last_30_days(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    await upgrade_async(url)
    store = Store(create_engine_for(url), clock=lambda: MONDAY + timedelta(days=3))
    try:
        async with store.transaction() as tx:
            await save_facts(tx.connection, [f for e in known_history() if (f := fact_of(e))])
        registry = CollectorRegistry()
        reports = reports_on(store)
        await Headlines(reports, ReportingMetrics.create(registry)).refresh()
    finally:
        await store.dispose()

    def gauge(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(f"leadrelay_reporting_{name}", labels)

    assert gauge("stage_conversion_ratio", stage="lead") == 0.75
    assert gauge("stage_conversion_ratio", stage="mql") == 0.25
    assert gauge("stage_conversion_ratio", stage="opportunity") is None  # nothing to divide
    assert gauge("sla_compliance_ratio", policy="sdr-standard") == 0.75
    assert gauge("speed_to_lead_seconds", measure="first_touch", quantile="p50") == 780.0
    assert gauge("speed_to_lead_seconds", measure="assignment", quantile="p95") == 60.0
    assert gauge("touched_within_ratio", within="1h") == 0.3333
