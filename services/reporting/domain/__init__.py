"""Reporting's pure domain: facts in, report rows out; no database, broker or web framework."""

from services.reporting.domain.facts import (
    EXITS,
    MAIN_PATH,
    Acknowledgement,
    Assignment,
    Engagement,
    History,
    Recycle,
    SlaSignal,
    StageChange,
    Touch,
)
from services.reporting.domain.funnel import FUNNEL_BY, funnel
from services.reporting.domain.recycled import RECYCLED_BY, recycled
from services.reporting.domain.report import Cell, Report, Row, UnknownDimension
from services.reporting.domain.routing import ROUTING_BY, RosterEntry, routing
from services.reporting.domain.sla import SLA_BY, daily_compliance, sla
from services.reporting.domain.speed import (
    SPEED_BY,
    BusinessTime,
    first_touch_distribution,
    speed_to_lead,
)
from services.reporting.domain.stats import Window, quantile, rate

__all__ = [
    "EXITS",
    "FUNNEL_BY",
    "MAIN_PATH",
    "RECYCLED_BY",
    "ROUTING_BY",
    "SLA_BY",
    "SPEED_BY",
    "Acknowledgement",
    "Assignment",
    "BusinessTime",
    "Cell",
    "Engagement",
    "History",
    "Recycle",
    "Report",
    "RosterEntry",
    "Row",
    "SlaSignal",
    "StageChange",
    "Touch",
    "UnknownDimension",
    "Window",
    "daily_compliance",
    "first_touch_distribution",
    "funnel",
    "quantile",
    "rate",
    "recycled",
    "routing",
    "sla",
    "speed_to_lead",
]
