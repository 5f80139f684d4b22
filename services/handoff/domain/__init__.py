"""The hand-off domain: routing config, round robin and the routing decision.

Pure: nothing here reads a clock, a database or a broker. The service layer loads the config, reads
the roster, accounts, round-robin state and loads, calls :func:`decide` and stores what it returns.
A rep's working calendar is the kernel's (``leadrelay.calendar``, via ``Rep.calendar``); the SLA
deadlines an assignment announces come through the ``ports.SlaDeadlines`` port.
"""

from services.handoff.domain.config import (
    DEFAULT_ROUTING_FILE,
    Account,
    AccountMatching,
    AssignTo,
    Capacity,
    Credit,
    Fallback,
    OutOfOffice,
    Rejections,
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
from services.handoff.domain.fairness import (
    PoolFairness,
    Share,
    fairness_report,
    largest_deviation,
    shares,
)
from services.handoff.domain.round_robin import RoutingState, give_turn_back, pick, pool_key

__all__ = [
    "DEFAULT_ROUTING_FILE",
    "Account",
    "AccountMatching",
    "AssignTo",
    "Capacity",
    "Credit",
    "DecisionTrace",
    "Fallback",
    "LeadFacts",
    "OutOfOffice",
    "PoolFairness",
    "Rejections",
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
    "Share",
    "SkipReason",
    "SkippedRep",
    "TraceStep",
    "cross_validate",
    "decide",
    "fairness_report",
    "give_turn_back",
    "largest_deviation",
    "load_roster",
    "load_routing",
    "pick",
    "pool_key",
    "record_assignment",
    "shares",
    "unknown_territories",
]
