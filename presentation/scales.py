"""Axis scales and tick labels, one rule for both chart renderers: the panel's SVG charts
(admin/charts.py) and the bots' and CLI's PNG charts (presentation/rendering.py)."""

from __future__ import annotations

import math


def nice_scale(peak: float) -> tuple[float, float]:
    """A top for the axis at or above ``peak`` and a round step (1, 2 or 5 x 10^k, at
    least 1: everything charted is counted) giving up to five gridlines."""
    if peak <= 0:
        return 1.0, 1.0
    raw = max(peak / 4, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return step * math.ceil(peak / step), step


def tick_label(value: float) -> str:
    """A count as a short label: 950, 1,200, 12k, 1.5M."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M".replace(".0M", "M")
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"
