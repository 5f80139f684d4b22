"""The funnel: leads entering each stage, stage-to-stage conversion and time in stage."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from services.reporting.domain.facts import EXITS, MAIN_PATH, History, StageChange
from services.reporting.domain.report import ALL, Report, Row, dimension, grouped, seconds
from services.reporting.domain.stats import Window, quantile, rate

FUNNEL_BY = ("source", "channel", "segment", "country", "grade", "team", "rep")
LEAD_ATTRIBUTES = ("source", "channel", "segment", "country", "grade")


@dataclass(frozen=True)
class Entry:
    """A lead entering a stage, and the transition that took it out again (None: still there)."""

    change: StageChange
    left_by: StageChange | None

    def advanced(self) -> bool:
        """Whether it left forward: further along the main path (from an exit: back onto it)."""
        stage, to = self.change.to_stage, self.left_by.to_stage if self.left_by else None
        if to not in MAIN_PATH:
            return False
        return stage not in MAIN_PATH or MAIN_PATH.index(to) > MAIN_PATH.index(stage)

    def exited_to(self, exit_stage: str) -> bool:
        return self.left_by is not None and self.left_by.to_stage == exit_stage

    def seconds_in_stage(self) -> float | None:
        if self.left_by is None:
            return None
        return (self.left_by.at - self.change.at).total_seconds()


def funnel(history: History, window: Window, by: str | None = None) -> Report:
    """Per group and stage, of the entries into the stage within the window: how many, how many
    moved forward (``conversion`` is their share), exits, and median/p90 time in the stage for
    those that left it. An entry counts once per transition, so a lead re-qualifying after a
    recycle enters ``mql`` twice."""
    dim = dimension(by, FUNNEL_BY)
    entries = [e for e in stage_entries(history) if window.holds(e.change.at)]
    rows: list[Row] = []
    for group, members in grouped(entries, entry_label(history, dim), dim).items():
        rows.extend(_stage_row(dim, group, stage, members) for stage in (*MAIN_PATH, *EXITS))
    return Report("funnel", window, dim, tuple(rows))


def stage_entries(history: History) -> list[Entry]:
    """Every transition into a stage, paired with the lead's next transition."""
    by_lead: dict[str, list[StageChange]] = defaultdict(list)
    for change in history.changes:
        by_lead[change.lead_key].append(change)
    entries: list[Entry] = []
    for changes in by_lead.values():
        following = [*changes[1:], None]
        entries.extend(Entry(c, n) for c, n in zip(changes, following, strict=True))
    return entries


def entry_label(history: History, dim: str) -> Callable[[Entry], str | None]:
    """How an entry is grouped: by its lead's attributes, or by who had the lead then."""
    first_known = _first_known_attributes(history)

    def label(entry: Entry) -> str | None:
        change = entry.change
        if dim == ALL:
            return ALL
        if dim in LEAD_ATTRIBUTES:
            return change.attributes.get(dim) or first_known[change.lead_key].get(dim)
        holder = history.assignment_at(change.lead_key, change.at)
        if dim == "team":
            return holder.team if holder else None
        return holder.rep_id if holder else change.attributes.get("rep_id")

    return label


def _first_known_attributes(history: History) -> dict[str, dict[str, str]]:
    """Per lead, the first value each attribute had (the original source, channel, ...)."""
    known: dict[str, dict[str, str]] = defaultdict(dict)
    for change in history.changes:
        for name, value in change.attributes.items():
            known[change.lead_key].setdefault(name, value)
    return known


def _stage_row(dim: str, group: str, stage: str, members: list[Entry]) -> Row:
    inside = [e for e in members if e.change.to_stage == stage]
    converted = sum(1 for e in inside if e.advanced())
    durations = [d for e in inside if (d := e.seconds_in_stage()) is not None]
    return {
        dim: group,
        "stage": stage,
        "entered": len(inside),
        "converted": converted,
        "conversion": rate(converted, len(inside)),
        "recycled": sum(1 for e in inside if e.exited_to("recycled")),
        "disqualified": sum(1 for e in inside if e.exited_to("disqualified")),
        "median_seconds_in_stage": seconds(quantile(durations, 0.5)),
        "p90_seconds_in_stage": seconds(quantile(durations, 0.9)),
    }
