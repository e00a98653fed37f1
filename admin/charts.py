"""Charts drawn as inline SVG on the server: no JavaScript, no front-end build, crisp at
any size, and a tooltip (an SVG ``<title>``) on every bar and point."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from presentation.scales import nice_scale, tick_label

PALETTE = (
    "#1565c0",
    "#ef6c00",
    "#2e7d32",
    "#8e24aa",
    "#c62828",
    "#00838f",
    "#6d4c41",
    "#546e7a",
    "#f9a825",
    "#ad1457",
)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    colour: str = ""


def _coloured(series: Sequence[Series], offset: int = 0) -> list[Series]:
    return [
        s if s.colour else Series(s.name, s.values, PALETTE[(i + offset) % len(PALETTE)])
        for i, s in enumerate(series)
    ]


def _at(values: Sequence[float | None], i: int) -> float | None:
    """A series' value at a position; a series shorter than the labels counts as empty there."""
    return values[i] if i < len(values) else None


def bar_chart(
    labels: Sequence[str],
    bars: Sequence[Series],
    lines: Sequence[Series] = (),
    *,
    element_id: str,
    caption: str,
    width: int = 600,
    height: int = 240,
) -> Markup:
    """Stacked bars (one stack per label) with optional lines over them."""
    bars = _coloured(bars)
    lines = _coloured(lines, offset=len(bars))
    left, right, top, bottom = 52, 12, 34, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    count = max(len(labels), 1)
    stacks = [sum(_at(s.values, i) or 0 for s in bars) for i in range(len(labels))]
    line_peak = max((v for s in lines for v in s.values if v is not None), default=0)
    axis_top, step = nice_scale(max(max(stacks, default=0), line_peak))
    band = plot_w / count
    # Escaped once each: a chart has hundreds of tooltips made of the same few texts.
    texts = [str(escape(label)) for label in labels]
    bar_names = [str(escape(s.name)) for s in bars]
    line_names = [str(escape(s.name)) for s in lines]

    def y_of(value: float) -> float:
        return top + plot_h - plot_h * value / axis_top

    parts = [
        f'<svg id="{escape(element_id)}" class="chart" viewBox="0 0 {width} {height}"'
        f' width="100%" role="img" aria-label="{escape(caption)}">'
    ]
    tick = 0.0
    while tick <= axis_top + step / 2:
        y = y_of(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"'
            ' stroke="#e3e8ef"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11"'
            f' fill="#5d6b7a">{tick_label(tick)}</text>'
        )
        tick += step
    every = max(1, math.ceil(count / 10))
    for i in range(len(labels)):
        x = left + band * i
        base = 0.0
        for s, name in zip(bars, bar_names, strict=True):
            value = _at(s.values, i) or 0
            if value:
                y0, y1 = y_of(base), y_of(base + value)
                parts.append(
                    f'<rect x="{x + band * 0.1:.1f}" y="{y1:.1f}" width="{band * 0.8:.1f}"'
                    f' height="{max(y0 - y1, 0.5):.1f}" fill="{s.colour}">'
                    f"<title>{texts[i]} · {name}: {tick_label(value)}</title></rect>"
                )
            base += value
        if i % every == 0:
            parts.append(
                f'<text x="{x + band / 2:.1f}" y="{height - 8}" text-anchor="middle"'
                f' font-size="11" fill="#5d6b7a">{texts[i]}</text>'
            )
    for s, name in zip(lines, line_names, strict=True):
        path: list[str] = []
        for i, point in enumerate(s.values[: len(labels)]):
            if point is None:
                continue
            x, y = left + band * (i + 0.5), y_of(point)
            path.append(f"{'L' if path else 'M'}{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{s.colour}">'
                f"<title>{texts[i]} · {name}: {tick_label(point)}</title></circle>"
            )
        if path:
            parts.append(
                f'<path d="{" ".join(path)}" fill="none" stroke="{s.colour}" stroke-width="2"/>'
            )
    x = float(left)
    for s in [*bars, *lines]:
        parts.append(
            f'<rect x="{x:.0f}" y="8" width="12" height="12" rx="2" fill="{s.colour}"/>'
            f'<text x="{x + 16:.0f}" y="18" font-size="12" fill="#1d2733">{escape(s.name)}</text>'
        )
        x += 28 + 7 * len(s.name)
    if not any(stacks) and not line_peak:
        parts.append(
            f'<text x="{left + plot_w / 2:.0f}" y="{top + plot_h / 2:.0f}" text-anchor="middle"'
            ' font-size="13" fill="#5d6b7a">nothing recorded in this period</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped above


def sparkline(values: Sequence[float], *, colour: str = PALETTE[0]) -> Markup:
    """A small trend line for a figure's tile (the last point marked)."""
    width, height, pad = 120, 32, 3
    if not values:
        return Markup("")
    peak = max(max(values), 1)
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = [
        (pad + i * step, height - pad - (height - 2 * pad) * v / peak)
        for i, v in enumerate(values)
    ]
    path = " ".join(f"{'L' if i else 'M'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))
    last_x, last_y = points[-1]
    return Markup(  # noqa: S704 - numbers and a colour constant only
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' aria-hidden="true"><path d="{path}" fill="none" stroke="{colour}"'
        f' stroke-width="1.5"/><circle cx="{last_x:.1f}" cy="{last_y:.1f}" r="2.5"'
        f' fill="{colour}"/></svg>'
    )
