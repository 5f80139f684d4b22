"""What one routing decision saw, kept beside it, so the decision can be re-derived exactly.

:func:`~services.handoff.domain.decision.decide` is pure: the same routing section, roster,
accounts, lead facts, rotation state, loads and instant always give the same decision. Hand-off
keeps all of them with every assignment it decides (a claim from a queue is a rep's choice, not
a decision, and keeps none): the roster once per version (a digest of its content, so an
unchanged roster is stored once however many decisions see it), the rest per decision, and the
routing section's digest to tell whether the definitions changed since. :func:`rederive` runs
the decision again from them: ``leadrelay replay`` and the tests use it to show that production's
assignments follow from what production knew.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from pydantic import AwareDatetime, BaseModel, ConfigDict

from services.handoff.domain.config import Account, Rep, RoutingConfig
from services.handoff.domain.decision import LeadFacts, RepLoad, RoutingDecision, decide
from services.handoff.domain.round_robin import RoutingState


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RosterSnapshot(_Value):
    """The reps and accounts a decision saw, each sorted by id."""

    reps: tuple[Rep, ...]
    accounts: tuple[Account, ...]

    @property
    def version(self) -> str:
        """A digest of the content: equal rosters share one version."""
        return digest(self.model_dump(mode="json"))


class DecisionInputs(_Value):
    """Everything but the roster that ``decide`` was given for one assignment."""

    routing_version: str
    """The digest of the routing section the decision ran under (:func:`routing_version`)."""
    roster_version: str
    facts: LeadFacts
    state: RoutingState
    loads: dict[str, RepLoad]
    decided_at: AwareDatetime


def digest(document: object) -> str:
    """SHA-256 of the canonical JSON of ``document`` (sorted keys, no spaces)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def routing_version(routing: RoutingConfig) -> str:
    return digest(routing.model_dump(mode="json"))


def snapshot_of(reps: Sequence[Rep], accounts: Sequence[Account]) -> RosterSnapshot:
    """The roster as a decision records it (reps and accounts sorted by id)."""
    return RosterSnapshot(
        reps=tuple(sorted(reps, key=lambda r: r.id)),
        accounts=tuple(sorted(accounts, key=lambda a: a.id)),
    )


def inputs_seen(
    routing_digest: str,
    roster_digest: str,
    facts: LeadFacts,
    state: RoutingState,
    loads: dict[str, RepLoad],
    decided_at: AwareDatetime,
) -> DecisionInputs:
    """The record of one call of ``decide``, the routing section and roster named by their
    digests (a batch computes those once, not once per decision)."""
    return DecisionInputs(
        routing_version=routing_digest,
        roster_version=roster_digest,
        facts=facts,
        state=state,
        loads=dict(loads),
        decided_at=decided_at,
    )


def rederive(
    routing: RoutingConfig, roster: RosterSnapshot, inputs: DecisionInputs
) -> RoutingDecision:
    """The decision ``inputs`` give under ``routing`` (the one kept if its digest matches)."""
    return decide(
        routing,
        roster.reps,
        roster.accounts,
        inputs.facts,
        inputs.state,
        inputs.loads,
        inputs.decided_at,
    )
