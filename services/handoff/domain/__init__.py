"""The hand-off domain: routing config, round robin and the routing decision.

Pure: nothing here reads a clock, a database or a broker. The service layer loads the config, reads
the roster, accounts, round-robin state and loads, calls :func:`decide` and stores what it returns.
A rep's working calendar is the kernel's (``leadrelay.calendar``, via ``Rep.calendar``); the SLA
deadlines an assignment announces come through the ``ports.SlaDeadlines`` port.
"""

from services.handoff.domain.config import (
    DEFAULT_ROUTING_FILE,
    Account,
    AssignTo,
    Capacity,
    Fallback,
    OutOfOffice,
    Rep,
    Role,
    RosterConfig,
    RoutingConfig,
    Rule,
    RuleWhen,
    Segment,
    SegmentBand,
    cross_validate,
    load_roster,
    load_routing,
    unknown_territories,
)
from services.handoff.domain.decision import (
    DecisionTrace,
    LeadFacts,
    RepLoad,
    Route,
    RoutingDecision,
    SkippedRep,
    SkipReason,
    TraceStep,
    decide,
    record_assignment,
)
from services.handoff.domain.round_robin import RoutingState, pick, pool_key

__all__ = [
    "DEFAULT_ROUTING_FILE",
    "Account",
    "AssignTo",
    "Capacity",
    "DecisionTrace",
    "Fallback",
    "LeadFacts",
    "OutOfOffice",
    "Rep",
    "RepLoad",
    "Role",
    "RosterConfig",
    "Route",
    "RoutingConfig",
    "RoutingDecision",
    "RoutingState",
    "Rule",
    "RuleWhen",
    "Segment",
    "SegmentBand",
    "SkipReason",
    "SkippedRep",
    "TraceStep",
    "cross_validate",
    "decide",
    "load_roster",
    "load_routing",
    "pick",
    "pool_key",
    "record_assignment",
    "unknown_territories",
]
