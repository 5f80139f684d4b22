"""Smooth weighted round robin (nginx's algorithm) whose state the caller stores between decisions.

Each pick adds every *eligible* rep's weight to their credit, gives the lead to the rep with the
most credit (ties: the smallest rep id) and takes the eligible reps' total weight back from that
rep. Over any run with a fixed set of eligible reps each rep's share equals weight / total, the
error never exceeds one assignment, and reps of equal weight strictly alternate.

Pools. The state holds one credit table per pool, and a pool is a role plus a team (``ae:*`` when
the rule names no team). Territory and segment only narrow which members of the pool are eligible
for one lead; they are not separate pools, so a rep covering two territories is balanced once
across both instead of collecting a full share in each.

Skipped reps. A rep who is not eligible for a lead (out of office, at capacity, outside their
hours, wrong territory, ...) gains no credit for it, and the credit they had is frozen. So an
absence earns no catch-up burst: a rep back from a week off resumes where they left the rotation.
Every credit is also clamped to plus or minus the pool's size times its total weight
(``credit_bound``), so no pattern of changing eligibility can let a credit grow without limit. A
fixed set of reps never reaches it: their credits stay within (-total, (size - 1) x total). The
total alone is not enough: weights 1, 1, 1, 11, 11 and 13 (total 38) take a credit to 41.

Giving the turn back. A lead the rep rejected at once, or that was taken from them by a
reassignment, can return what winning it cost (``give_turn_back``, as routing's ``credit`` section
says): the rep is back at the head of the rotation, as Chili Piper's "adjust fairness" does.

Across processes. Each pool's credits are their own value with their own version (the caller
keeps one row per pool, so decisions of different pools never wait for each other). The state
is plain JSON (``model_dump_json`` / ``model_validate_json``) and holds the pools a caller loaded;
a pool's version goes up by one with every change to it, so the caller can store each changed
pool with a compare-and-set, and a decision can record exactly which rotation it saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class RoutingState(BaseModel):
    """Round-robin credits per pool, ``pools[pool_key][rep_id] = credit``, and each pool's
    version, ``versions[pool_key]`` (0 for a pool never changed). Treat as immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pools: dict[str, dict[str, int]] = {}
    versions: dict[str, Annotated[int, Field(ge=0)]] = {}

    def version_of(self, pool: str) -> int:
        """How many times ``pool``'s credits have changed."""
        return self.versions.get(pool, 0)

    def changed(self, pool: str, credits: dict[str, int]) -> RoutingState:
        """This state with ``pool``'s credits replaced and its version one higher."""
        return RoutingState(
            pools={**self.pools, pool: credits},
            versions={**self.versions, pool: self.version_of(pool) + 1},
        )


def pool_key(role: str, team: str | None) -> str:
    """``"sdr:*"`` for all SDRs, ``"ae:enterprise"`` for the AEs of one team."""
    return f"{role}:{team or '*'}"


def pick(
    state: RoutingState,
    pool: str,
    members: Mapping[str, int],
    eligible: Sequence[str],
) -> tuple[str, RoutingState]:
    """Choose one of ``eligible`` (a non-empty subset of ``members``, rep id -> weight).

    Returns the chosen rep and the new state; reps no longer in the pool drop out of its table.
    """
    if not eligible:
        raise ValueError("pick needs at least one eligible rep")
    credits = {rep: credit for rep, credit in state.pools.get(pool, {}).items() if rep in members}
    candidates = sorted(set(eligible))
    for rep in candidates:
        credits[rep] = credits.get(rep, 0) + members[rep]
    chosen = max(candidates, key=lambda rep: credits[rep])
    credits[chosen] -= sum(members[rep] for rep in candidates)
    bound = credit_bound(members)
    table = {rep: max(-bound, min(bound, credit)) for rep, credit in sorted(credits.items())}
    return chosen, state.changed(pool, table)


def give_turn_back(
    state: RoutingState, pool: str, rep_id: str, members: Mapping[str, int]
) -> RoutingState:
    """Return to ``rep_id`` what one win cost them in ``pool``: the pool's total weight
    (``members``: rep id -> weight), within ``credit_bound`` like every credit. Unchanged if the
    rep left it."""
    credits = state.pools.get(pool, {})
    if rep_id not in members or rep_id not in credits:
        return state
    cost = sum(members.values())
    return state.changed(
        pool, {**credits, rep_id: min(credit_bound(members), credits[rep_id] + cost)}
    )


def credit_bound(members: Mapping[str, int]) -> int:
    """How far from zero a credit may go in a pool of ``members`` (see module)."""
    return len(members) * sum(members.values())
