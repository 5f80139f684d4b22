"""Calibrating the scorecard from what sales made of the leads it handed off (pure statistics).

Every figure is one both teams can argue with: a conversion rate is a count over a count with a
Wilson score interval; a rule's lift is the difference in SQL rate between hand-offs the rule
scored in and those it did not, with Newcombe's interval for a difference of two proportions
(built from the two Wilson intervals); a rule "predicts" only when that interval excludes zero.
Only hand-offs sales reported on (accepted, rejected, qualified, won, lost) count: a lead
nobody looked at yet says nothing about the rule.

The threshold analysis can only look upwards: leads below today's threshold were never handed
off, so nobody knows what sales would have made of them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from services.scoring.domain.model import LeadState, Stage, StageChange

Z_95 = 1.959964
"""The normal quantile of a two-sided 95% interval."""
SQL_STAGES = frozenset({Stage.SQL, Stage.OPPORTUNITY, Stage.CUSTOMER})
POINTS_FACTOR_BOUNDS = (0.5, 2.0)
"""A proposal never more than doubles or halves a rule's points in one calibration."""

Verdict = Literal["predicts SQL", "predicts against SQL", "no evidence"]


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Outcome:
    """What sales made of one hand-off, read from the lead's stage history."""

    accepted: bool = False
    sql: bool = False
    won: bool = False
    lost: bool = False
    rejected_reason: str | None = None
    """The rep's reason ("" when they gave none); None when not rejected."""

    @property
    def known(self) -> bool:
        """Whether sales reported anything on the hand-off."""
        return self.accepted or self.sql or self.lost or self.rejected_reason is not None


@dataclass(frozen=True)
class Episode:
    """One sales-ready episode: the score lines at hand-off and the outcome."""

    lead_key: str
    episode: int
    points: Mapping[str, float]
    """Rule -> points it contributed at hand-off (rules that scored nothing are absent)."""
    engagement: float
    qualified_by: str
    outcome: Outcome


@dataclass(frozen=True)
class RuleLift:
    """How the SQL rate of hand-offs differs with and without one rule."""

    rule: str
    with_n: int
    with_sql: int
    without_n: int
    without_sql: int
    rate_with: Interval
    rate_without: Interval
    difference: float
    difference_interval: Interval
    rejection_reasons: Mapping[str, int] = field(default_factory=dict)

    @property
    def verdict(self) -> Verdict:
        """``predicts SQL`` / ``predicts against SQL`` when the 95% interval excludes zero."""
        if self.difference_interval.low > 0:
            return "predicts SQL"
        if self.difference_interval.high < 0:
            return "predicts against SQL"
        return "no evidence"


@dataclass(frozen=True)
class ThresholdChoice:
    """The engagement threshold that maximises ``sql_value * SQLs - other hand-offs``."""

    threshold: float
    kept: int
    sql: int
    objective: float
    sql_rate: Interval
    current: float
    current_kept: int
    current_sql: int
    sql_value: float


def wilson(successes: int, n: int, z: float = Z_95) -> Interval:
    """The Wilson score interval of ``successes / n`` (the whole [0, 1] when n is 0)."""
    if n == 0:
        return Interval(0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def difference_interval(s1: int, n1: int, s2: int, n2: int, z: float = Z_95) -> Interval:
    """Newcombe's hybrid score interval for ``s1/n1 - s2/n2`` (method 10)."""
    p1, p2 = (s1 / n1 if n1 else 0.0), (s2 / n2 if n2 else 0.0)
    w1, w2 = wilson(s1, n1, z), wilson(s2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    high = d + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


def outcomes_by_episode(state: LeadState) -> dict[int, Outcome]:
    """Episode number -> what sales made of it: the changes after its MQL, until the next."""
    outcomes: dict[int, Outcome] = {}
    episode = 0
    for change in state.history:
        if change.to_stage is Stage.MQL:
            episode += 1
            outcomes[episode] = Outcome()
        elif episode:
            outcomes[episode] = _with_change(outcomes[episode], change)
    return outcomes


def _with_change(outcome: Outcome, change: StageChange) -> Outcome:
    to = change.to_stage
    sql = outcome.sql or to in SQL_STAGES
    accepted = outcome.accepted or to is Stage.SAL or sql
    rejected = outcome.rejected_reason
    if change.rule in ("sales_outcome:rejected", "sales_outcome:disqualified"):
        rejected = change.note or ("disqualified" if to is Stage.DISQUALIFIED else "")
    return Outcome(
        accepted=accepted,
        sql=sql,
        won=outcome.won or to is Stage.CUSTOMER,
        lost=outcome.lost or change.rule == "sales_outcome:lost",
        rejected_reason=rejected,
    )


def rule_lifts(episodes: Iterable[Episode]) -> list[RuleLift]:
    """Each rule seen at hand-off, with its lift on the SQL rate (reported hand-offs only)."""
    known = [e for e in episodes if e.outcome.known]
    rules = sorted({rule for e in known for rule in e.points})
    return [_lift(rule, known) for rule in rules]


def _lift(rule: str, known: Sequence[Episode]) -> RuleLift:
    with_rule = [e for e in known if rule in e.points]
    without = [e for e in known if rule not in e.points]
    s1, s2 = _sqls(with_rule), _sqls(without)
    n1, n2 = len(with_rule), len(without)
    reasons = Counter(
        e.outcome.rejected_reason or "(no reason given)"
        for e in with_rule
        if e.outcome.rejected_reason is not None
    )
    return RuleLift(
        rule=rule,
        with_n=n1,
        with_sql=s1,
        without_n=n2,
        without_sql=s2,
        rate_with=wilson(s1, n1),
        rate_without=wilson(s2, n2),
        difference=(s1 / n1 if n1 else 0.0) - (s2 / n2 if n2 else 0.0),
        difference_interval=difference_interval(s1, n1, s2, n2),
        rejection_reasons=dict(reasons.most_common()),
    )


def _sqls(episodes: Iterable[Episode]) -> int:
    return sum(e.outcome.sql for e in episodes)


def best_threshold(
    episodes: Iterable[Episode], current: float, sql_value: float = 3.0
) -> ThresholdChoice:
    """The ``min_engagement`` at or above ``current`` maximising ``sql_value*SQL - non-SQL``.

    Among reported hand-offs that qualified by the thresholds (a fast track ignores them).
    ``sql_value`` says how many unproductive hand-offs one SQL is worth to sales; ties go to
    the lower threshold, which keeps more volume.
    """
    pool = [e for e in episodes if e.outcome.known and e.qualified_by == "thresholds"]
    candidates = sorted({current, *(e.engagement for e in pool if e.engagement > current)})
    choices = [_choice(pool, t, current, sql_value) for t in candidates]
    return max(choices, key=lambda c: (c.objective, -c.threshold))


def _choice(
    pool: Sequence[Episode], threshold: float, current: float, sql_value: float
) -> ThresholdChoice:
    kept = [e for e in pool if e.engagement >= threshold]
    sql = _sqls(kept)
    return ThresholdChoice(
        threshold=threshold,
        kept=len(kept),
        sql=sql,
        objective=sql_value * sql - (len(kept) - sql),
        sql_rate=wilson(sql, len(kept)),
        current=current,
        current_kept=len(pool),
        current_sql=_sqls(pool),
        sql_value=sql_value,
    )


def proposed_points(points: float, lift: RuleLift) -> float:
    """``points`` scaled by the rule's rate ratio (bounded), only where the evidence says so.

    A rule with no evidence keeps its points; a rule whose interval excludes zero gets its
    points times (SQL rate with) / (SQL rate without), between halving and doubling.
    """
    if lift.verdict == "no evidence" or lift.with_n == 0 or lift.without_n == 0:
        return points
    rate_with, rate_without = lift.with_sql / lift.with_n, lift.without_sql / lift.without_n
    low, high = POINTS_FACTOR_BOUNDS
    ratio = high if rate_without == 0 else rate_with / rate_without
    factor = min(high, max(low, ratio))
    return round(points * factor if points >= 0 else points / factor, 1)
