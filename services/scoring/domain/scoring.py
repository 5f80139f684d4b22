"""Scorecard evaluation: fit from who the lead is, engagement from what it did, both explained.

Pure functions of (scorecard, facts, now). Activities are identified by event id and ordered by
the time they OCCURRED, so duplicates and out-of-order arrival cannot change a score.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from functools import cache
from typing import Protocol, TypeVar

from leadrelay.calendar import require_aware
from services.scoring.domain.config import (
    AxisLimits,
    EngagementRule,
    FitConfig,
    FitRule,
    Scorecard,
)
from services.scoring.domain.model import (
    GRADE_ORDER,
    Activity,
    EngagementResult,
    FitResult,
    Grade,
    LeadState,
    Profile,
    ScoreLine,
    Stage,
    in_time_order,
)


class Timed(Protocol):
    """What the engagement walk reads of a hit: an ``Activity`` or a ledger's ``Hit``."""

    @property
    def event_id(self) -> str: ...

    @property
    def occurred_at(self) -> datetime: ...


T = TypeVar("T", bound=Timed)


def evaluate_fit(scorecard: Scorecard, profile: Profile) -> FitResult:
    """Sum the points of every fit rule that matches (rules add up; none is exclusive), within
    the axis's group and total caps (``fit.limits``).

    Remembered per scorecard by the profile values its rules read: every event rescores its
    lead, a lead's profile rarely changes and many leads share those values (fit was about a
    tenth of scoring's CPU per event). Values that cannot be a key (a list in ``extra``) are
    evaluated every time.
    """
    key = tuple((type(value), value) for value in map(profile.value_of, scorecard.fit.reads))
    try:
        hash(key)
    except TypeError:  # a value that cannot be a key: worked out every time
        return _fit_of(scorecard, profile)
    return scorecard.fit_results.get(key, lambda: _fit_of(scorecard, profile))


def _fit_of(scorecard: Scorecard, profile: Profile) -> FitResult:
    fit = scorecard.fit
    matched = [rule for rule in fit.rules if _fit_matches(fit, rule, profile)]
    lines = within_limits(
        [ScoreLine(rule.id, "fit", rule.points, rule.points, 1.0) for rule in matched],
        {rule.id: rule.group for rule in fit.rules},
        fit.limits,
    )
    score = total(lines)
    return FitResult(score=score, grade=scorecard.grades.grade_for(score), breakdown=lines)


def evaluate_engagement(
    scorecard: Scorecard, activities: Iterable[Activity], now: datetime
) -> EngagementResult:
    """Score activities with caps, windows and exponential decay, one breakdown line per rule.

    Exact semantics, per rule (every matching rule applies; rules add up):

    1. Hits are the distinct activities (by event id) the rule matches, walked from the most
       recent ``occurred_at`` backwards (ties by event id), so recent behaviour is what counts.
    2. Window: a hit is skipped when ``max_per_window`` hits were already counted in
       ``[occurred_at, occurred_at + window)``; hence no rolling window of that length ever
       holds more than ``max_per_window`` counted hits.
    3. Cap: counted hits award the rule's points, undecayed, until their sum reaches ``cap``;
       the hit that crosses it gets the remainder, older hits nothing. A negative rule's cap is
       a floor. Because decay only shrinks points, a rule never contributes more than its cap,
       so one repeated action cannot qualify a lead on its own.
    4. Decay: each counted hit is worth ``points * 0.5 ** (age / half_life)``, ``age`` being
       ``now - occurred_at`` (zero for future-dated events, so nothing exceeds its points).

    Filling the cap from the newest hit (rather than the oldest) means a burst of page views a
    year ago does not lock page views out of the score forever; the total still never exceeds
    the cap. Line points are rounded to 2 dp and the score is the sum of the lines.
    """
    require_aware(now, "now")
    newest_first = in_time_order(activities)[::-1]
    engagement = scorecard.engagement
    lines: list[ScoreLine] = []
    for rule in engagement.rules:
        hits = (hit for hit in newest_first if engagement_rule_matches(rule, hit))
        line = engagement_line(rule, counted(rule, hits), now, engagement.half_life)
        if line is not None:
            lines.append(line)
    groups = {rule.id: rule.group for rule in engagement.rules}
    limited = within_limits(lines, groups, engagement.limits)
    return EngagementResult(score=total(limited), breakdown=limited)


def within_limits(
    lines: Sequence[ScoreLine], group_of: Mapping[str, str | None], limits: AxisLimits
) -> tuple[ScoreLine, ...]:
    """``lines`` (in rule order) after the group caps, then the total cap, of one axis.

    Caps bound undecayed points, like a rule's own cap, so decay still halves a score every
    half-life. Positive raw points fill each group's cap and then the total cap in rule order;
    a line cut by a cap keeps its decay factor on what is left and says which cap
    (``limited_by``). Negative lines pass unchanged and do not use up a cap.
    """
    used: dict[str, float] = defaultdict(float)
    return tuple(_capped(line, group_of.get(line.rule), limits, used) for line in lines)


def _capped(
    line: ScoreLine, group: str | None, limits: AxisLimits, used: dict[str, float]
) -> ScoreLine:
    """Cut a positive line to the room its group and the total have left; count what it uses."""
    if line.raw_points <= 0:
        return line
    raw, why = line.raw_points, None
    limit = limits.groups.get(group) if group is not None else None
    if limit is not None and raw > limit.cap - used[f"group:{group}"]:
        raw, why = max(limit.cap - used[f"group:{group}"], 0.0), f"group:{group}"
    if limits.total_cap is not None and raw > limits.total_cap - used["total"]:
        raw, why = max(limits.total_cap - used["total"], 0.0), "total"
    used[f"group:{group}"] += raw
    used["total"] += raw
    if why is None:
        return line
    points = round(raw * line.decay_factor, 2)
    return replace(line, points=points, raw_points=round(raw, 2), limited_by=why)


def remembered(
    scorecard: Scorecard, activities: Iterable[Activity], now: datetime
) -> tuple[Activity, ...]:
    """The activities still within ``engagement.retention`` of ``now``, in time order.

    Forgetting the oldest hits never changes how newer ones count (caps and windows are filled
    from the newest backwards); it only drops the decayed remainder of the forgotten hits.
    """
    horizon = now - scorecard.engagement.retention
    return tuple(a for a in in_time_order(activities) if a.occurred_at >= horizon)


def fresh_engagement_only(scorecard: Scorecard, state: LeadState) -> bool:
    """Whether the recycle guard applies: recycled, and the scorecard asks for fresh activity."""
    return state.stage is Stage.RECYCLED and scorecard.recycle.requires_fresh_engagement


def is_after_recycle(state: LeadState, activity: Activity) -> bool:
    return state.recycled_at is None or activity.occurred_at > state.recycled_at


def engagement_rule_matches(rule: EngagementRule, activity: Activity) -> bool:
    """Globs: ``action`` is case-sensitive (a fixed vocabulary); ``url``, ``form_id`` are not."""
    return (
        _glob(rule.action)(activity.action)
        and _glob_matches(rule.url, activity.url)
        and _glob_matches(rule.form_id, activity.form_id)
    )


def grade_at_least(grade: Grade, minimum: Grade) -> bool:
    return GRADE_ORDER.index(grade) >= GRADE_ORDER.index(minimum)


def _glob_matches(pattern: str | None, value: str | None) -> bool:
    if pattern is None:
        return True
    return value is not None and _glob(pattern.lower())(value.lower())


@cache
def _glob(pattern: str) -> Callable[[str], bool]:
    """``fnmatchcase`` against ``pattern``, as a test made once per pattern: plain equality for
    a pattern without ``*``, ``?`` or ``[`` (most actions), which every rule tries on every
    activity."""
    if not any(special in pattern for special in "*?["):
        return pattern.__eq__
    return lambda value: fnmatchcase(value, pattern)


def _fit_matches(fit: FitConfig, rule: FitRule, profile: Profile) -> bool:
    if rule.email_domain_in is not None:
        domain = profile.email_domain
        return domain is not None and any(
            domain == listed or domain.endswith("." + listed) for listed in fit.domains(rule)
        )
    value = profile.value_of(rule.field)
    if value is None:
        return False
    if rule.equals is not None:
        return _same(value, rule.equals)
    if rule.in_ is not None:
        return any(_same(value, item) for item in rule.in_)
    if rule.range is not None:
        number = _number(value)
        return number is not None and rule.range.contains(number)
    if rule.contains is not None:
        return rule.contains.casefold() in str(value).casefold()
    return rule.regex is not None and re.search(rule.regex, str(value), re.IGNORECASE) is not None


def _same(value: object, expected: str | bool | int | float) -> bool:
    """Equality as a marketer means it: text ignores case and padding; numbers compare as such."""
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        number = _number(value)
        return number is not None and number == expected
    return str(value).strip().casefold() == str(expected).strip().casefold()


def _number(value: object) -> float | None:
    """A number from an int, float or numeric text ("1,000"); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", ""))
        except ValueError:
            return None
    return None


def counted(rule: EngagementRule, newest_first: Iterable[T]) -> list[tuple[T, float]]:
    """The hits that count and the undecayed points each earns, after window and cap.

    The ledger walks every rule's kept hits on every event, so the window is read once.
    """
    window = rule.window if rule.max_per_window is not None else None
    per_window = rule.max_per_window or 0
    taken: list[tuple[T, float]] = []
    in_window: deque[datetime] = deque()
    so_far = 0.0
    for hit in newest_first:
        if window is not None:
            while in_window and in_window[0] >= hit.occurred_at + window:
                in_window.popleft()
            if len(in_window) >= per_window:
                continue
        points = within_cap(rule, so_far)
        if points == 0:
            break
        so_far += points
        in_window.append(hit.occurred_at)
        taken.append((hit, points))
    return taken


def within_cap(rule: EngagementRule, total: float) -> float:
    if rule.cap is None:
        return rule.points
    if rule.points >= 0:
        return max(0.0, min(rule.points, rule.cap - total))
    return min(0.0, max(rule.points, rule.cap - total))


def engagement_line(
    rule: EngagementRule, hits: Sequence[tuple[Timed, float]], now: datetime, half_life: timedelta
) -> ScoreLine | None:
    if not hits:
        return None
    raw = exact = 0.0
    for hit, points in hits:  # one pass: every rule's line is recomputed on every event
        raw += points
        exact += points * decay(hit.occurred_at, now, half_life)
    return decayed_line(rule, exact, raw, [hit.event_id for hit, _ in reversed(hits)])


def decayed_line(
    rule: EngagementRule, exact: float, raw: float, source_event_ids: Iterable[str]
) -> ScoreLine:
    """An engagement rule's breakdown line from its decayed and undecayed sums, rounded the one
    way the breakdown shows them (whether the sums come from the hits or from running tallies)."""
    return ScoreLine(
        rule=rule.id,
        axis="engagement",
        points=round(exact, 2),
        raw_points=round(raw, 2),
        decay_factor=round(exact / raw, 4) if raw else 1.0,
        source_event_ids=tuple(source_event_ids),
    )


def decay(occurred_at: datetime, now: datetime, half_life: timedelta) -> float:
    """What a point earned at ``occurred_at`` is worth at ``now``: halved every half-life, and
    whole until then for a future-dated activity. Runs per counted hit per event, hence the
    one division and no ``max`` over timedeltas."""
    half_lives = (now - occurred_at) / half_life
    return float(0.5**half_lives) if half_lives > 0 else 1.0


def total(lines: Iterable[ScoreLine]) -> float:
    return round(sum(line.points for line in lines), 2)
