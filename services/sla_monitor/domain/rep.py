"""What the SLA domain knows about a rep: the snapshot hand-off sends with each assignment.

Which business calendar an assignment's deadlines count in is decided here, once: the rep's own
calendar (time zone, weekly working hours, holidays, as the roster held them at assignment), plus
the holidays of the calendar the policy names: sales ops lists a team's or a region's public
holidays once, on the team's calendar, not on every rep. The policy's calendar alone when there
is no rep (a lead left in the fallback queue) or when the rep's hours cannot serve as a business
calendar (a week without any working time would never come due, and shifts running into the next
day's first shift are ambiguous).

This rule produces the deadlines hand-off announces in ``lead_assigned`` (through
:class:`AnnouncedDeadlines`, which the composition root hands to hand-off); the monitor starts its
clocks at those announced figures and uses the rule only for an event that lacks them, so the
deadline a rep reads is the one that is enforced. Out-of-office periods are not part of the
announced calendar (routing never hands a lead to an absent rep); an absence the monitor learns
of later pauses a running clock or hands the lead on (``out_of_office``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Final

from leadrelay.calendar import BusinessCalendar
from leadrelay.contracts.events import RepSnapshot, SlaTerms
from leadrelay.memo import Memo
from services.sla_monitor.domain.actions import ClockKind
from services.sla_monitor.domain.clocks import deadlines
from services.sla_monitor.domain.config import SlaConfig, SlaPolicy

MANAGER: Final = "manager"
"""The escalation target that means "this rep's manager"."""


def assignment_calendar(
    rep: RepSnapshot | None, policy: SlaPolicy, sla: SlaConfig
) -> BusinessCalendar:
    """The calendar ``policy``'s deadlines count in for an assignment to ``rep`` (see module)."""
    policy_calendar = sla.calendar(policy.calendar)
    own = own_calendar(rep) if rep is not None else None
    if own is None:
        return policy_calendar
    return replace(own, holidays=own.holidays | policy_calendar.holidays)


def own_calendar(rep: RepSnapshot) -> BusinessCalendar | None:
    """The rep's own business calendar, or None when their hours cannot be one (see module)."""
    try:
        hours = {str(day): shifts for day, shifts in rep.working_hours.items()}
        return BusinessCalendar.from_parts(rep.time_zone, hours, rep.holidays)
    except ValueError:
        return None


def escalation_target(to: str, manager: str | None, team: str | None) -> str:
    """Who an escalation goes to: ``manager`` becomes the rep's manager from the snapshot.

    Without one, the rep's team (whose lead reads the team's escalations), else ``manager``.
    """
    if to != MANAGER:
        return to
    return manager or team or MANAGER


@dataclass(frozen=True)
class AnnouncedDeadlines:
    """The deadlines an assignment starts, as hand-off publishes them in ``lead_assigned``.

    Hand-off calls it through its own port without importing this service; the composition root
    binds it to the ``sla:`` section. Each calendar an assignment counts in is built once (see
    ``_calendar``).
    """

    sla: SlaConfig
    _calendars: Memo[tuple[object, ...], BusinessCalendar] = field(
        default_factory=lambda: Memo(_CALENDARS_KEPT), init=False, compare=False, repr=False
    )

    def __call__(
        self,
        *,
        role: str,
        route: str,
        team: str | None,
        rep: RepSnapshot | None,
        assigned_at: datetime,
    ) -> SlaTerms:
        policy = self.sla.policy_for(role, route, team)
        due = deadlines(policy, self._calendar(rep, policy), assigned_at)
        return SlaTerms(
            first_touch_due=due.get(ClockKind.FIRST_TOUCH),
            acceptance_due=due.get(ClockKind.ACCEPTANCE),
            policy=policy.id,
        )

    def _calendar(self, rep: RepSnapshot | None, policy: SlaPolicy) -> BusinessCalendar:
        """``assignment_calendar``, kept per rep calendar and policy calendar: parsing a rep's
        hours on every assignment cost more than counting the deadlines, and a calendar kept
        remembers the working intervals of the days it was asked."""
        own = None
        if rep is not None:
            own = (rep.time_zone, tuple(sorted(rep.working_hours.items())), rep.holidays)
        key = (policy.calendar, own)
        return self._calendars.get(key, lambda: assignment_calendar(rep, policy, self.sla))


_CALENDARS_KEPT: Final = 4096
"""Most assignment calendars kept (a few per rep)."""
