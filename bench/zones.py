"""Zone figures: point-in-zone look-ups per second against 1,000 polygons.

.venv/bin/python bench/zones.py [--zones 1000] [--points 1000000] [--batch 10000]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import time

import numpy as np

from geofence.zones import ZoneIndex, parse_zones

WEST, SOUTH, EAST, NORTH = 76.75, 43.15, 77.05, 43.35  # Almaty, roughly


def sectors(count: int, seed: int = 5) -> dict[str, object]:
    """A grid of ``count`` sectors over the city, each an irregular 12-gon inside its cell."""
    rng = random.Random(seed)
    columns = math.ceil(math.sqrt(count * (EAST - WEST) / (NORTH - SOUTH)))
    rows = math.ceil(count / columns)
    width, height = (EAST - WEST) / columns, (NORTH - SOUTH) / rows
    features = []
    for i in range(count):
        cx = WEST + (i % columns + 0.5) * width
        cy = SOUTH + (i // columns + 0.5) * height
        ring = []
        for k in range(12):
            angle = 2 * math.pi * k / 12
            r = rng.uniform(0.35, 0.5)
            ring.append([cx + r * width * math.cos(angle), cy + r * height * math.sin(angle)])
        ring.append(ring[0])
        features.append(
            {
                "type": "Feature",
                "properties": {"name": f"Sector {i + 1}", "kind": "sector"},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--zones", type=int, default=1_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}")
    started = time.perf_counter()
    zones = parse_zones(sectors(args.zones))
    index = ZoneIndex([(i, z.geometry) for i, z in enumerate(zones)])
    print(f"{len(index):,} polygons checked and indexed in {time.perf_counter() - started:.2f} s")
    rng = np.random.default_rng(1)
    lons = rng.uniform(WEST, EAST, args.points)
    lats = rng.uniform(SOUTH, NORTH, args.points)
    started = time.perf_counter()
    found = 0
    for start in range(0, args.points, args.batch):
        points, _ = index.locate(
            lons[start : start + args.batch], lats[start : start + args.batch]
        )
        found += len(points)
    elapsed = time.perf_counter() - started
    print(
        f"point-in-zone: {args.points:,} points in batches of {args.batch:,}: "
        f"{args.points / elapsed:,.0f} look-ups/s ({found:,} points inside a sector)"
    )
    started = time.perf_counter()
    for lon, lat in zip(lons[:20_000].tolist(), lats[:20_000].tolist(), strict=True):
        index.containing(lon, lat)
    single = (time.perf_counter() - started) / 20_000
    print(f"one point at a time: {single * 1e6:.1f} µs per look-up ({1 / single:,.0f}/s)")


if __name__ == "__main__":
    main()
