"""What every report is: rows of named cells for a window, grouped by one dimension."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from services.reporting.domain.facts import NONE_LABEL
from services.reporting.domain.stats import Window

Cell = str | int | float | None
Row = dict[str, Cell]
T = TypeVar("T")
ALL = "all"
"""The dimension (and its only group) of a report asked for without ``by``."""


class UnknownDimension(ValueError):
    """A report was asked to group by something it cannot group by."""


@dataclass(frozen=True)
class Report:
    """A computed report: its name, window, dimension and rows (first cell: the group)."""

    name: str
    window: Window
    by: str
    rows: tuple[Row, ...]

    def columns(self) -> tuple[str, ...]:
        """Every column in first-seen order (rows of different kinds may leave some out)."""
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return tuple(seen)


def dimension(by: str | None, allowed: Iterable[str]) -> str:
    """``by`` checked against what a report offers; ``all`` when not given."""
    choices = (ALL, *allowed)
    if by is None:
        return ALL
    if by not in choices:
        raise UnknownDimension(f"`by` must be one of {', '.join(choices)}")
    return by


def grouped(
    items: Iterable[T], label: Callable[[T], str | None], dim: str
) -> Mapping[str, list[T]]:
    """Items by their group label, groups sorted by name; unknown labels become ``(none)``.
    Without a dimension (``all``) the one group exists even when it is empty, so a report of
    nothing yet has its rows of zeros."""
    groups: dict[str, list[T]] = defaultdict(list)
    if dim == ALL:
        groups[ALL] = []
    for item in items:
        groups[label(item) or NONE_LABEL].append(item)
    return dict(sorted(groups.items()))


def seconds(value: float | None) -> float | None:
    """A duration cell: whole seconds to one decimal."""
    return None if value is None else round(value, 1)
