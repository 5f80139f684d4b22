"""Reading reporting's facts back as the domain's ``History`` (what every report starts from)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay.store.unit_of_work import Store
from services.reporting.domain import (
    FUNNEL_BY,
    RECYCLED_BY,
    ROUTING_BY,
    SLA_BY,
    SPEED_BY,
    BusinessTime,
    History,
    Report,
    RosterEntry,
    Window,
    funnel,
    recycled,
    routing,
    sla,
    speed_to_lead,
)
from services.reporting.messages import load_fact
from services.reporting.tables import reporting_facts


async def load_history(
    connection: AsyncConnection, until: datetime, lead_key: str | None = None
) -> History:
    """Every fact that happened before ``until`` (of one lead, if given): the history as it
    stood then, so a report for a past window does not change when later facts arrive."""
    query = select(reporting_facts.c.kind, reporting_facts.c.document).where(
        reporting_facts.c.at < until
    )
    if lead_key is not None:
        query = query.where(reporting_facts.c.lead_key == lead_key)
    rows = await connection.execute(query)
    return History.from_facts(load_fact(kind, document) for kind, document in rows)


@dataclass(frozen=True)
class Reports:
    """The five reports on the store: each loads the history up to its window's end."""

    store: Store
    business_time: BusinessTime
    roster: Mapping[str, RosterEntry]
    marketing_sla: bool = False
    """Whether the definitions give marketing a clock on recycled leads (``sla.marketing``)."""

    async def history(self, until: datetime, lead_key: str | None = None) -> History:
        async with self.store.read() as connection:
            return await load_history(connection, until, lead_key)

    async def report(self, name: str, window: Window, by: str | None = None) -> Report:
        """Report ``name`` (a key of ``REPORTS``); ``UnknownDimension`` for a bad ``by``."""
        history = await self.history(window.end)
        return self.compute(name, history, window, by)

    def compute(self, name: str, history: History, window: Window, by: str | None) -> Report:
        if name == "funnel":
            return funnel(history, window, by)
        if name == "speed-to-lead":
            return speed_to_lead(history, window, self.business_time, by)
        if name == "sla":
            return sla(history, window, by, marketing=self.marketing_sla)
        if name == "recycled":
            return recycled(history, window, by)
        return routing(history, window, self.roster, by)


REPORTS: Mapping[str, tuple[str, ...]] = {
    "funnel": FUNNEL_BY,
    "speed-to-lead": SPEED_BY,
    "sla": SLA_BY,
    "recycled": RECYCLED_BY,
    "routing": ROUTING_BY,
}
"""Each report's name and the dimensions it groups by."""
