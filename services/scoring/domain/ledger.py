"""A lead's engagement as running per-rule tallies: ``evaluate_engagement``'s answer, in state
that does not grow with the lead's history.

``evaluate_engagement`` is the definition: it walks every remembered activity. A ``Ledger``
keeps, per engagement rule, just what that walk can still use, so recording an activity costs
the same after ten activities or ten thousand:

- A rule with a cap or a window keeps the hits its newest-first walk can still reach. The walk
  stops once the cap is full, and adding a hit anywhere never moves the oldest counted hit back
  in time (the window's greedy choice stays ahead of any other choice), so a hit older than it
  can never count again and is dropped. What is left is the counted hits (at most cap / points)
  and the hits the window skipped among them; ``MAX_KEPT`` bounds those, keeping the newest. A
  rule that skipped more than ``MAX_KEPT`` hits of a burst before its cap filled, or a windowed
  rule without a cap with more hits than that in the retention, is the one place where the
  ledger can count differently from the definition.
- A rule with neither counts every hit, decayed: a hit's worth halves every half-life, so a sum
  of decayed points as of an instant decays to any later instant with one multiplication. The
  sums are kept per slice of time (``SLICES`` per retention), so that forgetting what fell out
  of the retention drops whole slices: one whose newest hit is older than the retention. Hits
  up to one slice older than the retention may thus still count their decayed remainder (at
  most ``0.5 ** (retention * (1 - 1 / SLICES) / half_life)`` of their points, which the
  definition drops). A future-dated hit (worth its full points until the clock reaches it) waits
  on its own until then. The breakdown names the newest ``SOURCES`` hits of such a rule.

A recycled lead's qualifying engagement counts only activity after the recycle: the walked rules
filter their kept hits, the decayed ones keep ``fresh`` slices of the hits after ``fresh_since``,
rebuilt from the recent activities when the lead is recycled again.

Values are rounded to 9 decimals as they are stored, so the same hits give the same ledger in
whatever order they arrived (the score is rounded to 2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Final

from leadrelay.calendar import require_aware
from services.scoring.domain.config import EngagementConfig, EngagementRule, Scorecard
from services.scoring.domain.model import (
    RECENT_ACTIVITIES,
    Activity,
    EngagementResult,
    Hit,
    LeadState,
    Ledger,
    Score,
    ScoreLine,
    Slice,
    Tally,
    time_order,
)
from services.scoring.domain.scoring import (
    counted,
    decay,
    decayed_line,
    engagement_line,
    engagement_rule_matches,
    evaluate_fit,
    fresh_engagement_only,
    remembered,
    total,
    within_cap,
    within_limits,
)

SLICES: Final = 64
"""Slices per retention in which a decayed rule keeps its sums."""
MAX_KEPT: Final = 256
"""Most hits a walked rule keeps (see the module docstring)."""
SOURCES: Final = 20
"""How many of its newest hits a decayed rule's breakdown line names."""
_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
_DIGITS: Final = 9

_fingerprints: dict[int, tuple[EngagementConfig, str]] = {}


def score_lead(scorecard: Scorecard, state: LeadState, now: datetime) -> Score:
    """Both axes at ``now``, with the engagement that counts toward sales-ready.

    For a recycled lead under ``recycle.requires_fresh_engagement``, ``qualifying_engagement``
    counts only activities that occurred after ``recycled_at``; ``engagement`` counts all.
    """
    fit = evaluate_fit(scorecard, state.profile)
    ledger = current_ledger(scorecard, state, now)
    engagement = ledger_engagement(scorecard, ledger, now)
    qualifying = engagement.score
    if fresh_engagement_only(scorecard, state):
        fresh = fresh_since(scorecard, ledger, state.recycled_at, state.activities, now)
        qualifying = ledger_engagement(scorecard, fresh, now, after=state.recycled_at).score
    return Score(
        fit=fit.score,
        engagement=engagement.score,
        grade=fit.grade,
        breakdown=fit.breakdown + engagement.breakdown,
        version=scorecard.version,
        scored_at=now,
        qualifying_engagement=qualifying,
    )


def record(scorecard: Scorecard, state: LeadState, activity: Activity, now: datetime) -> LeadState:
    """The state with one more activity: in its ledger and recent activities, and what fell
    out of the retention forgotten (the caller checked it is new and within the retention)."""
    ledger = current_ledger(scorecard, state, now)
    ledger = fresh_since(scorecard, ledger, state.recycled_at, state.activities, now)
    ledger = forget(scorecard, add(scorecard, ledger, [activity], now), now)
    activities = remembered(scorecard, (*state.activities, activity), now)
    horizon = now - scorecard.engagement.retention
    return replace(
        state,
        activities=activities[-RECENT_ACTIVITIES:],
        engagement=ledger,
        unscored=(),
        first_form=_first_form(state, activities, horizon),
    )


def _first_form(
    state: LeadState, remembered: Sequence[Activity], horizon: datetime
) -> Activity | None:
    """The oldest remembered form fill: the one kept, unless forgotten, or the recent one."""
    forms = [a for a in remembered if a.form_id is not None][:1]
    if state.first_form is not None and state.first_form.occurred_at >= horizon:
        forms.append(state.first_form)
    return min(forms, key=time_order, default=None)


def fingerprint(engagement: EngagementConfig) -> str:
    """A digest of the engagement section: a ledger built under another one is rebuilt."""
    known = _fingerprints.get(id(engagement))
    if known is not None and known[0] is engagement:
        return known[1]
    digest = hashlib.sha256(engagement.model_dump_json().encode()).hexdigest()[:16]
    _fingerprints[id(engagement)] = (engagement, digest)
    return digest


def walked(rule: EngagementRule) -> bool:
    """Whether the rule keeps hits (cap or window) rather than decayed sums."""
    return rule.cap is not None or rule.window is not None or rule.points == 0


def current_ledger(scorecard: Scorecard, state: LeadState, now: datetime) -> Ledger:
    """The state's ledger under ``scorecard``, with the merged activities taken in.

    Built from ``state.activities`` when the state has none (stored before ledgers: those are
    the whole history) or has one of another engagement section: then only the recent
    activities count for the new rules (``leadrelay replay`` runs the archive through them).
    """
    ledger = state.engagement
    if ledger is None or ledger.fingerprint != fingerprint(scorecard.engagement):
        empty = Ledger(
            fingerprint(scorecard.engagement),
            tuple(Tally(rule.id) for rule in scorecard.engagement.rules),
            state.recycled_at,
        )
        return add(scorecard, empty, state.activities, now)
    return add(scorecard, ledger, state.unscored, now) if state.unscored else ledger


def add(
    scorecard: Scorecard, ledger: Ledger, activities: Sequence[Activity], now: datetime
) -> Ledger:
    """The ledger with ``activities`` taken in (each matching rule's tally, at once)."""
    engagement = scorecard.engagement
    tallies = []
    for rule, tally in zip(engagement.rules, ledger.tallies, strict=True):
        hits = [
            Hit(a.event_id, a.occurred_at) for a in activities if engagement_rule_matches(rule, a)
        ]
        if hits and walked(rule):
            tally = replace(tally, kept=_reachable(rule, _merge(tally.kept, hits)))
        elif hits:
            tally = _decayed(engagement, rule, tally, hits, now, ledger.fresh_since)
        tallies.append(tally)
    return replace(ledger, tallies=tuple(tallies))


def forget(scorecard: Scorecard, ledger: Ledger, now: datetime) -> Ledger:
    """The ledger without what occurred before ``now - retention``, waiting hits now due
    folded in (a tally with nothing to forget is left as it is)."""
    engagement = scorecard.engagement
    horizon = now - engagement.retention
    tallies = []
    for rule, tally in zip(engagement.rules, ledger.tallies, strict=True):
        if walked(rule):
            if tally.kept and tally.kept[0].occurred_at < horizon:
                tally = replace(
                    tally, kept=tuple(h for h in tally.kept if h.occurred_at >= horizon)
                )
        elif _has_older(tally, horizon):
            slices = tuple(s for s in tally.slices if s.as_of >= horizon)
            kept = tuple(h for h in tally.kept if h.occurred_at >= horizon)
            tally = replace(
                tally,
                kept=kept,
                slices=slices,
                fresh=tuple(s for s in tally.fresh if s.as_of >= horizon),
                sources=tuple(h for h in tally.sources if h.occurred_at >= horizon),
                hits=sum(s.hits for s in slices) + len(kept),
            )
        if not walked(rule) and tally.kept and tally.kept[0].occurred_at <= now:
            tally = _settle(engagement, rule, tally, now, ledger.fresh_since)
        tallies.append(tally)
    return replace(ledger, tallies=tuple(tallies))


def _has_older(tally: Tally, horizon: datetime) -> bool:
    """Whether a decayed rule's tally holds anything from before ``horizon``."""
    return any(s.as_of < horizon for s in (*tally.slices, *tally.fresh)) or bool(
        tally.sources and tally.sources[0].occurred_at < horizon
    )


def fresh_since(
    scorecard: Scorecard,
    ledger: Ledger,
    since: datetime | None,
    recent: Sequence[Activity],
    now: datetime,
) -> Ledger:
    """The ledger whose ``fresh`` slices count the hits after ``since`` (a new recycle),
    rebuilt from the recent activities when it counted after another instant."""
    if ledger.fresh_since == since:
        return ledger
    engagement = scorecard.engagement
    tallies = []
    for rule, tally in zip(engagement.rules, ledger.tallies, strict=True):
        if walked(rule):
            tallies.append(tally)
            continue
        waiting = {h.event_id for h in tally.kept}
        fresh: tuple[Slice, ...] = ()
        for a in recent:
            after = since is not None and a.occurred_at > since
            if after and a.event_id not in waiting and engagement_rule_matches(rule, a):
                fresh = _fold(engagement, fresh, Hit(a.event_id, a.occurred_at), rule.points)
        tallies.append(replace(tally, fresh=fresh))
    return replace(ledger, tallies=tuple(tallies), fresh_since=since)


def ledger_engagement(
    scorecard: Scorecard, ledger: Ledger, now: datetime, *, after: datetime | None = None
) -> EngagementResult:
    """``evaluate_engagement`` of the hits the ledger holds (only those after ``after``, whose
    decayed sums must be ``fresh_since`` it), at ``now``."""
    require_aware(now, "now")
    engagement = scorecard.engagement
    lines = []
    for rule, tally in zip(engagement.rules, ledger.tallies, strict=True):
        if walked(rule):
            hits = [h for h in tally.kept if after is None or h.occurred_at > after]
            line = engagement_line(rule, counted(rule, hits[::-1]), now, engagement.half_life)
        else:
            line = _decayed_line(engagement, rule, tally, now, after)
        if line is not None:
            lines.append(line)
    limited = within_limits(lines, {r.id: r.group for r in engagement.rules}, engagement.limits)
    return EngagementResult(score=total(limited), breakdown=limited)


def _merge(kept: tuple[Hit, ...], hits: Iterable[Hit]) -> tuple[Hit, ...]:
    """Kept and new hits, one per event id (the first seen), by (occurred_at, event_id)."""
    by_id = {h.event_id: h for h in kept}
    for hit in hits:
        by_id.setdefault(hit.event_id, hit)
    return tuple(sorted(by_id.values(), key=time_order))


def _reachable(rule: EngagementRule, kept: tuple[Hit, ...]) -> tuple[Hit, ...]:
    """The hits the newest-first walk can still reach, now or after any later hit."""
    walk = counted(rule, kept[::-1])
    if walk and within_cap(rule, sum(points for _, points in walk)) == 0:
        oldest = walk[-1][0]
        kept = kept[kept.index(oldest) :]
    return kept[-MAX_KEPT:]


def _decayed(
    engagement: EngagementConfig,
    rule: EngagementRule,
    tally: Tally,
    hits: Sequence[Hit],
    now: datetime,
    since: datetime | None,
) -> Tally:
    """A decayed rule's tally with new hits: due ones folded into slices, future ones waiting."""
    known = {h.event_id for h in (*tally.kept, *tally.sources)}
    new = [h for h in hits if h.event_id not in known]
    if not new:
        return tally
    sources = _merge(tally.sources, new)[-SOURCES:]
    waiting = _merge(tally.kept, [h for h in new if h.occurred_at > now])
    slices, fresh = tally.slices, tally.fresh
    for hit in new:
        if hit.occurred_at <= now:
            slices = _fold(engagement, slices, hit, rule.points)
            if since is not None and hit.occurred_at > since:
                fresh = _fold(engagement, fresh, hit, rule.points)
    return replace(
        tally,
        kept=waiting,
        slices=slices,
        fresh=fresh,
        sources=sources,
        hits=tally.hits + len(new),
    )


def _settle(
    engagement: EngagementConfig,
    rule: EngagementRule,
    tally: Tally,
    now: datetime,
    since: datetime | None,
) -> Tally:
    """Fold the waiting (future-dated) hits the clock has reached into the slices."""
    due = [h for h in tally.kept if h.occurred_at <= now]
    if not due:
        return tally
    slices, fresh = tally.slices, tally.fresh
    for hit in due:
        slices = _fold(engagement, slices, hit, rule.points)
        if since is not None and hit.occurred_at > since:
            fresh = _fold(engagement, fresh, hit, rule.points)
    waiting = tuple(h for h in tally.kept if h.occurred_at > now)
    return replace(tally, kept=waiting, slices=slices, fresh=fresh)


def _fold(
    engagement: EngagementConfig, slices: tuple[Slice, ...], hit: Hit, points: float
) -> tuple[Slice, ...]:
    """Slices with one more hit: its slice's sum, re-based on the newer of the two instants."""
    index = (hit.occurred_at - _EPOCH) // _width(engagement)
    at = hit.occurred_at
    for position, old in enumerate(slices):
        if old.index != index:
            continue
        half_life = engagement.half_life
        if at <= old.as_of:
            value = old.value + points * 0.5 ** ((old.as_of - at) / half_life)
            folded = Slice(index, old.as_of, round(value, _DIGITS), old.hits + 1)
        else:
            value = old.value * 0.5 ** ((at - old.as_of) / half_life) + points
            folded = Slice(index, at, round(value, _DIGITS), old.hits + 1)
        return (*slices[:position], folded, *slices[position + 1 :])
    return tuple(sorted((*slices, Slice(index, at, float(points), 1)), key=lambda s: s.index))


def _width(engagement: EngagementConfig) -> timedelta:
    return engagement.retention / SLICES


def _decayed_line(
    engagement: EngagementConfig,
    rule: EngagementRule,
    tally: Tally,
    now: datetime,
    after: datetime | None,
) -> ScoreLine | None:
    """A decayed rule's breakdown line: every hit counts, each decayed since it occurred."""
    slices = tally.slices if after is None else tally.fresh
    waiting = [h for h in tally.kept if after is None or h.occurred_at > after]
    hits = sum(s.hits for s in slices) + len(waiting)
    if hits == 0:
        return None
    half_life = engagement.half_life
    exact = sum(s.value * decay(s.as_of, now, half_life) for s in slices)
    exact += sum(rule.points * decay(h.occurred_at, now, half_life) for h in waiting)
    raw = rule.points * hits
    sources = [h.event_id for h in tally.sources if after is None or h.occurred_at > after]
    return decayed_line(rule, exact, raw, sources)
