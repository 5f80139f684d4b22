"""Charts as inline SVG, drawn on the server: no chart library, nothing to download."""

from __future__ import annotations

from collections.abc import Sequence

from services.reporting.console.html import DASH, esc

BAR_HEIGHT, GAP, LABEL_WIDTH, WIDTH = 26, 10, 150, 640


def bars(
    items: Sequence[tuple[str, float, str]], *, title: str, maximum: float | None = None
) -> str:
    """Horizontal bars: (label, value, text shown at the bar's end)."""
    top = max([maximum or 0.0, *(value for _, value, _ in items)]) or 1.0
    span = WIDTH - LABEL_WIDTH - 90
    height = len(items) * (BAR_HEIGHT + GAP) + GAP
    rows = []
    for index, (label, value, text) in enumerate(items):
        y = GAP + index * (BAR_HEIGHT + GAP)
        width = max(span * value / top, 1.0)
        rows.append(
            f"<text x='{LABEL_WIDTH - 8}' y='{y + 18}' text-anchor='end'>{esc(label)}</text>"
            f"<rect x='{LABEL_WIDTH}' y='{y}' width='{width:.1f}' height='{BAR_HEIGHT}' rx='3'/>"
            f"<text x='{LABEL_WIDTH + width + 6:.1f}' y='{y + 18}'>{esc(text)}</text>"
        )
    return (
        f"<svg class='chart' role='img' aria-label='{esc(title)}' viewBox='0 0 {WIDTH} {height}'"
        f" width='{WIDTH}' height='{height}'><title>{esc(title)}</title>{''.join(rows)}</svg>"
    )


def funnel(stages: Sequence[tuple[str, int, float | None]]) -> str:
    """Leads entering each stage as bars, each labelled with the conversion to the next."""
    items = [(stage, float(n), f"{n}" + _conversion(rate)) for stage, n, rate in stages]
    return bars(items, title="Leads entering each stage, with conversion to the next")


def _conversion(rate: float | None) -> str:
    return "" if rate is None else f"  \u2192 {rate * 100:.1f}% moved on"


def trend(points: Sequence[tuple[str, float | None]], *, title: str) -> str:
    """A line of shares (0-100%) per day; a day without a value breaks the line."""
    width, height, pad = WIDTH, 160, 30
    step = (width - 2 * pad) / max(len(points) - 1, 1)
    coords = [
        (pad + i * step, height - pad - (value or 0.0) * (height - 2 * pad), value)
        for i, (_, value) in enumerate(points)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y, v in coords if v is not None)
    dots = "".join(
        f"<circle cx='{x:.1f}' cy='{y:.1f}' r='4'><title>{esc(label)}: "
        f"{DASH if v is None else f'{v * 100:.1f}%'}</title></circle>"
        for (x, y, v), (label, _) in zip(coords, points, strict=True)
        if v is not None
    )
    labels = "".join(
        f"<text x='{x:.1f}' y='{height - 8}' text-anchor='middle'>{esc(label[5:])}</text>"
        for (x, _, _), (label, _) in zip(coords, points, strict=True)
    )
    return (
        f"<svg class='chart trend' role='img' aria-label='{esc(title)}' "
        f"viewBox='0 0 {width} {height}' width='{width}' height='{height}'><title>{esc(title)}"
        f"</title><line x1='{pad}' y1='{pad}' x2='{width - pad}' y2='{pad}' class='grid'/>"
        f"<text x='2' y='{pad + 4}'>100%</text><text x='2' y='{height - pad + 4}'>0%</text>"
        f"<line x1='{pad}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}'"
        " class='grid'/>"
        f"<polyline points='{line}'/>{dots}{labels}</svg>"
    )
