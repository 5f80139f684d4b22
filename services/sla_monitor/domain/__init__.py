"""The pure SLA domain: business calendars, SLA policies and clocks. No I/O, no system clock.

The service wiring stores :class:`SlaClock` rows (indexed by :func:`next_fire_at`), calls
:func:`start_clocks` on an assignment, :func:`on_sales_activity` on sales feedback and
:func:`fire_due` / :func:`due_actions` from its firing loop with an injected ``now``, and turns the
returned actions into events. See ``clocks.py`` for the lifecycle and ladder timing and
``leadrelay/calendar.py`` for how business time is counted.
"""

from leadrelay.calendar import (
    BusinessCalendar,
    WorkInterval,
    add_business_days,
    add_business_time,
    business_time_between,
    parse_time_zone,
    parse_weekly_hours,
    to_utc,
)
from leadrelay.durations import Duration, TimeBasis, parse_duration
from services.sla_monitor.domain.actions import (
    Breach,
    ClockFacts,
    ClockKind,
    Escalate,
    Recycle,
    RecycleReason,
    RequestReassignment,
    SlaAction,
    Warn,
)
from services.sla_monitor.domain.clocks import (
    AssignmentFacts,
    ClockState,
    ScheduledStep,
    SlaClock,
    clock_id_for,
    due_actions,
    end_assignment,
    fire_due,
    next_fire_at,
    on_sales_activity,
    start_clocks,
    taken_away_by,
)
from services.sla_monitor.domain.config import (
    DEFAULT,
    DEFAULT_SLA_FILE,
    AppliesTo,
    CalendarConfig,
    ClockPolicy,
    EscalateStep,
    LadderStep,
    ReassignStep,
    RecycleStep,
    Role,
    Route,
    SlaConfig,
    SlaPolicy,
    load_sla,
)
from services.sla_monitor.domain.warn_rules import WarnRule, parse_warn_rule

__all__ = [
    "DEFAULT",
    "DEFAULT_SLA_FILE",
    "AppliesTo",
    "AssignmentFacts",
    "Breach",
    "BusinessCalendar",
    "CalendarConfig",
    "ClockFacts",
    "ClockKind",
    "ClockPolicy",
    "ClockState",
    "Duration",
    "Escalate",
    "EscalateStep",
    "LadderStep",
    "ReassignStep",
    "Recycle",
    "RecycleReason",
    "RecycleStep",
    "RequestReassignment",
    "Role",
    "Route",
    "ScheduledStep",
    "SlaAction",
    "SlaClock",
    "SlaConfig",
    "SlaPolicy",
    "TimeBasis",
    "Warn",
    "WarnRule",
    "WorkInterval",
    "add_business_days",
    "add_business_time",
    "business_time_between",
    "clock_id_for",
    "due_actions",
    "end_assignment",
    "fire_due",
    "load_sla",
    "next_fire_at",
    "on_sales_activity",
    "parse_duration",
    "parse_time_zone",
    "parse_warn_rule",
    "parse_weekly_hours",
    "start_clocks",
    "taken_away_by",
    "to_utc",
]
