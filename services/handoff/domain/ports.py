"""What hand-off needs from outside its own rules, as types it owns (no other service imported).

The SLA deadlines an assignment announces are counted by the SLA monitor's rules; the composition
root passes in a function of this shape (``services.sla_monitor.domain.AnnouncedDeadlines``), so
the figure hand-off publishes is the one the monitor enforces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from leadrelay.contracts.events import RepSnapshot, SlaTerms


class SlaDeadlines(Protocol):
    """The deadlines that start with an assignment to ``rep`` (None: a fallback queue)."""

    def __call__(
        self,
        *,
        role: str,
        route: str,
        team: str | None,
        rep: RepSnapshot | None,
        assigned_at: datetime,
    ) -> SlaTerms: ...
