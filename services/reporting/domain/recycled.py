"""Marketing's side of the hand-off: what sales sent back, and what marketing made of it."""

from __future__ import annotations

from datetime import datetime

from services.reporting.domain.facts import History, Recycle
from services.reporting.domain.report import ALL, Report, Row, dimension, grouped, seconds
from services.reporting.domain.stats import Window, quantile, rate

RECYCLED_BY = ("reason", "rep")


def recycled(history: History, window: Window, by: str | None = None) -> Report:
    """Per reason or rep, for recycles within the window: how many; how many re-engaged (their
    engagement score rose above its value at the recycle) and re-qualified (became an MQL
    again), and the median/p90 time each took."""
    dim = dimension(by, RECYCLED_BY)
    chosen = [r for r in history.recycles if window.holds(r.at)]

    def label(recycle: Recycle) -> str | None:
        return ALL if dim == ALL else recycle.reason if dim == "reason" else recycle.rep_id

    rows = [_row(history, dim, g, members) for g, members in grouped(chosen, label, dim).items()]
    return Report("recycled", window, dim, tuple(rows))


def re_engaged_at(history: History, recycle: Recycle) -> datetime | None:
    """The first score after the recycle higher than the lead's score at the recycle."""
    mine = [e for e in history.engagement if e.lead_key == recycle.lead_key]
    before = [e.score for e in mine if e.at <= recycle.at]
    baseline = before[-1] if before else 0.0
    return next((e.at for e in mine if e.at > recycle.at and e.score > baseline), None)


def re_qualified_at(history: History, recycle: Recycle) -> datetime | None:
    """When the lead next became an MQL after the recycle."""
    return next(
        (
            c.at
            for c in history.changes
            if c.lead_key == recycle.lead_key and c.to_stage == "mql" and c.at > recycle.at
        ),
        None,
    )


def _row(history: History, dim: str, group: str, members: list[Recycle]) -> Row:
    engaged = [_after(r, re_engaged_at(history, r)) for r in members]
    qualified = [_after(r, re_qualified_at(history, r)) for r in members]
    row: Row = {dim: group, "recycled": len(members)}
    for name, took in (("re_engaged", engaged), ("re_qualified", qualified)):
        known = [t for t in took if t is not None]
        row[name] = len(known)
        row[f"{name}_rate"] = rate(len(known), len(members))
        row[f"{name}_median_seconds"] = seconds(quantile(known, 0.5))
        row[f"{name}_p90_seconds"] = seconds(quantile(known, 0.9))
    return row


def _after(recycle: Recycle, at: datetime | None) -> float | None:
    return None if at is None else (at - recycle.at).total_seconds()
