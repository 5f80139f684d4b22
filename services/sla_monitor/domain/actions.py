"""What the SLA domain asks the service to do; the wiring turns each into one event.

Warn, Breach and Escalate become ``leadrelay.sla_warning.v1``, ``sla_breached.v1`` and
``sla_escalated.v1``; RequestReassignment becomes ``leadrelay.lead_reassignment_requested.v1``;
Recycle becomes ``leadrelay.lead_recycled.v1``. ``action_id`` is stable for the same fact, so it can
serve as (part of) the CloudEvent ``id`` and a redelivered decision is recognised downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

RecycleReason = Literal["sla_breached", "rejected_by_sales", "disqualified", "lost", "manual"]
ReassignmentReason = Literal["sla_breached", "out_of_office", "sla_at_risk"]
"""Why a reassignment is asked: the ladder after a breach, the rep's absence, or a forecast
that the clock will not be met."""


class ClockKind(StrEnum):
    FIRST_TOUCH = "first_touch"
    ACCEPTANCE = "acceptance"
    MARKETING_ACKNOWLEDGEMENT = "marketing_acknowledgement"


@dataclass(frozen=True, kw_only=True)
class ClockFacts:
    """Fields every clock event carries; ``deadline`` is the clock's due time."""

    clock_id: str
    lead_key: str
    assignment_id: str
    rep_id: str
    clock: ClockKind
    policy: str
    deadline: datetime
    fired_at: datetime


@dataclass(frozen=True, kw_only=True)
class Warn(ClockFacts):
    """The deadline is near (at the policy's ``warn_at``)."""

    step: str = field(default="warn", init=False)

    @property
    def action_id(self) -> str:
        return f"{self.clock_id}/warning"


@dataclass(frozen=True, kw_only=True)
class Breach(ClockFacts):
    """The deadline passed without the awaited sales activity."""

    step: str = field(default="breach", init=False)

    @property
    def action_id(self) -> str:
        return f"{self.clock_id}/breach"


@dataclass(frozen=True, kw_only=True)
class Escalate(ClockFacts):
    """Tell ``escalated_to`` (a role such as ``manager``, resolved by the service) of the breach."""

    position: int
    """The step's 1-based place in the policy's ``on_breach`` ladder."""
    escalated_to: str
    manager: str | None = None
    """The rep's manager, for an ``escalated_to`` of ``manager`` (see ``rep.escalation_target``)."""
    step: str = field(default="escalate", init=False)

    @property
    def action_id(self) -> str:
        return f"{self.clock_id}/step-{self.position}"


@dataclass(frozen=True, kw_only=True)
class RequestReassignment(ClockFacts):
    """Ask hand-off for another rep, never one in ``exclude_rep_ids`` (every rep who had the lead).

    ``attempt`` is the attempt number the new assignment will carry; ``assignment_id`` is the
    assignment being replaced (``previous_assignment_id`` in the event).
    """

    position: int
    """The ladder step's place in ``on_breach``; 0 when asked outside the ladder."""
    episode: int
    attempt: int
    max_reassignments: int | None
    """The ladder step's ``max``; None when asked outside the ladder."""
    exclude_rep_ids: tuple[str, ...]
    reason: ReassignmentReason = "sla_breached"
    step: str = field(default="reassign", init=False)

    @property
    def action_id(self) -> str:
        if self.reason != "sla_breached":
            return f"{self.clock_id}/{self.reason.replace('_', '-')}"
        return f"{self.clock_id}/step-{self.position}"


@dataclass(frozen=True, kw_only=True)
class Recycle:
    """Send the lead back to marketing at the end of the breach ladder. ``fired_at`` is the
    event's ``recycled_at``.

    The clock fields are optional and ``detail`` exists because this action once also carried
    sales' rejections (now announced by scoring); narrowing them is left for later.
    """

    lead_key: str
    assignment_id: str
    rep_id: str
    reason: RecycleReason
    detail: str | None
    fired_at: datetime
    clock_id: str | None = None
    clock: ClockKind | None = None
    policy: str | None = None
    deadline: datetime | None = None
    position: int | None = None

    @property
    def action_id(self) -> str:
        if self.clock_id is not None:
            return f"{self.clock_id}/step-{self.position}"
        return f"{self.assignment_id}/recycle-{self.reason}"


SlaAction = Warn | Breach | Escalate | RequestReassignment | Recycle
