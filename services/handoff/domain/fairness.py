"""Fair credit, measured: each rep's expected and actual share of a pool's leads over a window.

Expected is the rep's weight over the pool's total weight; actual is the rep's share of the
leads the rotation gave out in the window (turns given back do not count, account-owner and
fallback leads never took a turn). The largest deviation is what sales ops watches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.handoff.domain.config import AssignTo, Rep, RoutingConfig
from services.handoff.domain.round_robin import pool_key


@dataclass(frozen=True)
class Share:
    """One rep's place in one pool's rotation over the window."""

    rep_id: str
    pool: str
    weight: int
    assigned: int
    expected: float
    actual: float

    @property
    def deviation(self) -> float:
        """Actual minus expected share (positive: the rep got more than their weight says)."""
        return self.actual - self.expected


def shares(pool: str, weights: Mapping[str, int], assigned: Mapping[str, int]) -> list[Share]:
    """Each member's share of ``pool`` (``weights``: rep -> weight; ``assigned``: rep -> leads
    the rotation gave them in the window). With no leads yet, every actual share is 0."""
    total_weight = sum(weights.values())
    total = sum(assigned.get(rep, 0) for rep in weights)
    return [
        Share(
            rep_id=rep,
            pool=pool,
            weight=weight,
            assigned=assigned.get(rep, 0),
            expected=weight / total_weight if total_weight else 0.0,
            actual=assigned.get(rep, 0) / total if total else 0.0,
        )
        for rep, weight in sorted(weights.items())
    ]


def largest_deviation(pool_shares: Sequence[Share]) -> float:
    """The largest absolute gap between a rep's actual and expected share (0 for none)."""
    return max((abs(share.deviation) for share in pool_shares), default=0.0)


@dataclass(frozen=True)
class PoolFairness:
    """One rotation pool's shares and its largest deviation."""

    pool: str
    shares: tuple[Share, ...]

    @property
    def largest_deviation(self) -> float:
        return largest_deviation(self.shares)


def fairness_report(
    routing: RoutingConfig, reps: Iterable[Rep], counts: Mapping[str, Mapping[str, int]]
) -> list[PoolFairness]:
    """Every pool routing can rotate in (the default's and each rule's), over its active
    members; ``counts`` is ``{pool: {rep_id: leads}}`` for the window."""
    targets = [routing.default, *(rule.assign_to for rule in routing.rules)]
    roster = [rep for rep in reps if rep.active]
    pools: dict[str, AssignTo] = {pool_key(t.role, t.team): t for t in targets}
    return [
        PoolFairness(pool, tuple(shares(pool, _weights(target, roster), counts.get(pool, {}))))
        for pool, target in sorted(pools.items())
    ]


def _weights(target: AssignTo, reps: Iterable[Rep]) -> dict[str, int]:
    return {rep.id: rep.weight for rep in reps if target.includes(rep)}
