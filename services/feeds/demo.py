"""A month of every feed for the demo city (source ``demo``, names marked [DEMO]), so the
Feeds pages and the situation centre's feed charts are alive. Seeded: a reload adds only
the days since the last one."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from typing import Any

from services.db import Connection
from services.feeds.specs import FEEDS
from services.feeds.store import FeedImporter

DEMO_SOURCE = "demo"
DAYS = 30
_DISTRICTS = ("Almaly", "Auezov", "Bostandyk", "Medeu", "Zhetysu", "Turksib")
_CAMERAS = 3  # per district
_MODES = {"bus": ("12", "32", "92"), "metro": ("M1",), "trolleybus": ("T4",)}
_ORIGINS = (("Moscow", "SU 1954"), ("Istanbul", "TK 350"), ("Nur-Sultan", "KC 852"))
_HOSPITALS = ("City infectious diseases hospital", "Clinic No. 7", "Regional hospital")
# The demo city's sectors (services/demo.py) as the operators count them.
_SECTORS = ("[DEMO] Sector 1 (Almaly)", "[DEMO] Sector 2 (Medeu)")
_OPERATORS = ("[DEMO] Operator A", "[DEMO] Operator B")
_ITEMS = {
    "Tests and reagents": 9_000_000,
    "Protective equipment": 4_500_000,
    "Food kits": 6_000_000,
}


def _rows(today: date) -> dict[str, list[tuple[date, int | None, list[str], dict[str, Any]]]]:
    rng = random.Random(7)  # noqa: S311 - made-up figures, seeded
    rows: dict[str, list[tuple[date, int | None, list[str], dict[str, Any]]]] = {
        name: [] for name in FEEDS
    }
    lockdown = today - timedelta(days=DAYS // 2)  # traffic falls by half from here
    for back in range(DAYS, 0, -1):
        day = today - timedelta(days=back)
        calm = 0.5 if day >= lockdown else 1.0
        wave = math.sin(math.pi * (DAYS - back) / DAYS)
        for district in _DISTRICTS:
            for n in range(1, _CAMERAS + 1):
                camera = f"[DEMO] {district[:3].upper()}-{n}"
                for hour in range(6, 23, 4):
                    vehicles = round(
                        calm * (800 + 400 * math.sin(hour / 4)) * rng.uniform(0.8, 1.2)
                    )
                    rows["traffic"].append((day, hour, [district, camera], {"vehicles": vehicles}))
            rows["medical"].append(
                (
                    day,
                    None,
                    [district],
                    {"examined": 40 + rng.randrange(60), "positive": rng.randrange(4)},
                )
            )
            rows["facilities"].append(
                (
                    day,
                    None,
                    [district],
                    {
                        "pharmacies": 40 + rng.randrange(10),
                        "quarantine_centres": 1 + round(2 * wave),
                        "quarantine_places": 100 + round(200 * wave),
                    },
                )
            )
        for mode, routes in _MODES.items():
            for route in routes:
                passengers = round(
                    calm * (30_000 if mode == "metro" else 9_000) * rng.uniform(0.8, 1.1)
                )
                rows["transport"].append(
                    (day, None, [mode, f"[DEMO] {route}"], {"passengers": passengers})
                )
        for origin, flight in _ORIGINS:
            passengers = 60 + rng.randrange(120)
            rows["flights"].append(
                (
                    day,
                    None,
                    [origin, f"[DEMO] {flight}"],
                    {
                        "passengers": passengers,
                        "tested": passengers,
                        "quarantined": rng.randrange(20),
                    },
                )
            )
        for hospital in _HOSPITALS:
            occupied = round(80 + 150 * wave + rng.randrange(10))
            rows["beds"].append(
                (
                    day,
                    None,
                    [f"[DEMO] {hospital}"],
                    {
                        "beds": 300,
                        "occupied": occupied,
                        "icu": occupied // 10,
                        "ventilators": occupied // 25,
                    },
                )
            )
        for weight, sector in enumerate(_SECTORS, 1):
            for operator in _OPERATORS:
                for hour in (*range(22, 24), *range(0, 6)):  # the quarantine night
                    night = 30 if hour in (23, 0) else 12
                    away = round(
                        weight
                        * night
                        * (1 - calm / 2 if day >= lockdown else 1)
                        * rng.uniform(0.5, 1.5)
                    )
                    rows["operators"].append((day, hour, [sector, operator], {"away": away}))
        for line, per_hour in (("103", 3), ("1308", 6), ("1406", 1)):
            for district in _DISTRICTS[:4]:
                for hour in range(8, 22, 3):
                    for n in range(round(per_hour * (0.5 + wave) * rng.uniform(0.5, 1.5))):
                        call = f"[DEMO] {line}-{day:%m%d}-{district[:3]}-{hour:02d}-{n}"
                        seconds = 30 + rng.randrange(400)
                        rows["calls"].append(
                            (day, hour, [line, district, call], {"seconds": seconds})
                        )
        for item, month in _ITEMS.items():
            planned = month / DAYS
            spent = planned * rng.uniform(0.6, 1.3)
            rows["budget"].append(
                (
                    day,
                    None,
                    [f"[DEMO] {item}"],
                    {"spent": f"{spent:.2f}", "planned": f"{planned:.2f}"},
                )
            )
    return rows


async def load_demo_feeds(importer: FeedImporter, today: date) -> int:
    """The demo month of every feed up to yesterday, through the feeds' own import;
    returns how many rows were added."""
    added = 0
    for feed, rows in _rows(today).items():
        spec = FEEDS[feed]
        lines = [
            (
                n,
                [
                    day.isoformat(),
                    *([] if not spec.hourly else ["" if hour is None else str(hour)]),
                    *keys,
                    *(str(figures[f.name]) for f in spec.figures),
                ],
            )
            for n, (day, hour, keys, figures) in enumerate(rows, 1)
        ]
        report = await importer.import_rows(feed, lines, source=DEMO_SOURCE, actor="demo-data")
        added += report.accepted
    return added


async def remove_demo_feeds(conn: Connection) -> int:
    status = await conn.execute("DELETE FROM feed_records WHERE source = $1", DEMO_SOURCE)
    return int(status.split()[-1])
