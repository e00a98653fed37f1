"""A choropleth drawn as inline SVG on the server: shapes in longitude/latitude filled by
their value (no map tiles, no JavaScript), a tooltip on each."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from services.feeds.operators import SectorShape


def choropleth(
    shapes: Sequence[
        SectorShape
    ],  # the sectors, or the districts  # the sectors, or the districts
    values: dict[str, int],
    *,
    element_id: str,
    unit: str,
    width: int = 600,
    height: int = 420,
) -> Markup:
    points = [p for shape in shapes for ring in shape.rings for p in ring]
    if not points:
        return Markup(
            '<p class="muted" id="{}">No zones of this kind to draw: import them with'
            " citybots import zones.</p>"
        ).format(element_id)
    west, east = min(x for x, _ in points), max(x for x, _ in points)
    south, north = min(y for _, y in points), max(y for _, y in points)
    # Longitude shrinks with latitude: scale it so the shapes keep their proportions.
    squeeze = math.cos(math.radians((south + north) / 2))
    span_x, span_y = max((east - west) * squeeze, 1e-9), max(north - south, 1e-9)
    scale = min((width - 20) / span_x, (height - 40) / span_y)
    peak = max(values.values(), default=0) or 1

    def xy(x: float, y: float) -> str:
        return f"{10 + (x - west) * squeeze * scale:.1f},{30 + (north - y) * scale:.1f}"

    parts = [
        f'<svg id="{escape(element_id)}" viewBox="0 0 {width} {height}" width="100%"'
        f' role="img" aria-label="{escape(unit)} by sector">'
    ]
    for shape in shapes:
        value = values.get(shape.name, 0)
        level = value / peak
        fill = f"rgb({int(255 - 55 * level)}, {int(245 - 205 * level)}, {int(235 - 200 * level)})"
        path = " ".join("M" + " L".join(xy(x, y) for x, y in ring) + " Z" for ring in shape.rings)
        parts.append(
            f'<path d="{path}" fill="{fill}" stroke="#37474f" stroke-width="1">'
            f"<title>{escape(shape.name)}: {value:,} {escape(unit)}</title></path>"
        )
    parts.append(
        f'<text x="10" y="18" font-size="12" fill="#555">darker = more {escape(unit)}'
        f" (most: {peak:,})</text></svg>"
    )
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped above
