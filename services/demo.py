"""An obviously-labelled demo city, for trying the platform: every name starts with
[DEMO], every IIN encodes a birth in the 1800s (century digit 1 or 2, so it cannot
be a living resident's), and every row carries a demo_key so loading twice changes
nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.db import Connection
from services.validation import parse_bin, parse_iin

DEMO_PREFIX = "[DEMO] "


def _with_check_digit(body: str) -> str:
    for last in "0123456789":
        try:
            return parse_iin(body + last).value
        except ValueError:
            continue
    raise ValueError(f"no check digit for {body}")


@dataclass(frozen=True)
class DemoPerson:
    key: str
    iin: str
    story: str
    phone: str


# Century digit 1/2 = born in the 1800s: valid by the check digit, never a living person.
DEMO_PEOPLE = (
    DemoPerson("red", _with_check_digit("85010110000"), "PCR positive 2 days ago", "+77010000001"),
    DemoPerson(
        "yellow", _with_check_digit("85020220001"), "registered contact, isolating", "+77010000002"
    ),
    DemoPerson(
        "green", _with_check_digit("85030310002"), "negative PCR yesterday", "+77010000003"
    ),
    DemoPerson("blue", _with_check_digit("85040420003"), "nothing known", "+77010000004"),
)


def demo_token(venue_key: str, direction: str) -> str:
    """Demo QR tokens are readable on purpose (and marked demo); real ones are random."""
    return f"{'in' if direction == 'entry' else 'out'}_demo_{venue_key}"


_DEMO_BIN = parse_bin("971240001315").value
DEMO_BIN = _DEMO_BIN
# The demo organisation's head on the organisations' register: a venue registered in the
# staff bot under DEMO_BIN is verified by sharing this phone, and its staff may then
# check people in by IIN (services/venues.py).
DEMO_HEAD_PHONE = "+77010000010"
DEMO_VENUE_KEYS = ("central-market", "abay-cinema", "arbat-cafe")
_VENUES = (
    ("central-market", "Central Market", "Zhibek Zholy 53", 43.2630, 76.9450, 400),
    ("abay-cinema", "Cinema on Abay", "Abay Ave 44", 43.2400, 76.9300, 250),
    ("arbat-cafe", "Cafe Arbat", "Zhibek Zholy 80", 43.2620, 76.9400, 60),
)


def _square(lon: float, lat: float, size: float) -> dict[str, object]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


_ZONES = (
    ("sector-1", "Sector 1 (Almaly)", "sector", _square(76.90, 43.24, 0.03)),
    ("sector-2", "Sector 2 (Medeu)", "sector", _square(76.93, 43.24, 0.03)),
    ("quarantine-block", "Quarantine block", "quarantine", _square(76.935, 43.255, 0.005)),
)


async def load_demo_data(conn: Connection, now: datetime | None = None) -> dict[str, int]:
    """Upsert the demo city in one transaction; returns how many rows of each kind exist."""
    now = now or datetime.now(UTC)
    async with conn.transaction():
        for key, name, address, lat, lon, capacity in _VENUES:
            venue_id = await conn.fetchval(
                """
                INSERT INTO venues (bin, name, address, latitude, longitude, capacity, demo_key)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (demo_key) DO UPDATE SET name = EXCLUDED.name,
                    address = EXCLUDED.address, latitude = EXCLUDED.latitude,
                    longitude = EXCLUDED.longitude, capacity = EXCLUDED.capacity
                RETURNING id
                """,
                _DEMO_BIN,
                DEMO_PREFIX + name,
                address,
                lat,
                lon,
                capacity,
                f"venue:{key}",
            )
            entrance_id = await conn.fetchval(
                "INSERT INTO entrances (venue_id, name) VALUES ($1, 'Main') "
                "ON CONFLICT (venue_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
                venue_id,
            )
            for direction in ("entry", "exit"):
                await conn.execute(
                    "INSERT INTO venue_codes (token, entrance_id, direction) VALUES ($1, $2, $3) "
                    "ON CONFLICT DO NOTHING",
                    demo_token(key, direction),
                    entrance_id,
                    direction,
                )
        await conn.execute(
            """
            INSERT INTO organisations (bin, name, activity_code, head_phone, allowed, source)
            VALUES ($1, $2, '47.11', $3, false, 'demo')
            ON CONFLICT (bin) DO NOTHING
            """,
            _DEMO_BIN,
            DEMO_PREFIX + "City Trade LLP",
            DEMO_HEAD_PHONE,
        )
        people = {p.key: p for p in DEMO_PEOPLE}
        for person in DEMO_PEOPLE:
            await conn.execute(
                "INSERT INTO citizen_phones (iin, phone) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                person.iin,
                person.phone,
            )
        pcr = (
            ("red", now - timedelta(days=2, hours=6), now - timedelta(days=2), "positive"),
            ("green", now - timedelta(days=1, hours=8), now - timedelta(days=1), "negative"),
        )
        for key, sampled, result_at, result in pcr:
            await conn.execute(
                """
                INSERT INTO pcr_results (iin, sampled_at, result_at, result, laboratory, demo_key)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (demo_key) DO NOTHING
                """,
                people[key].iin,
                sampled,
                result_at,
                result,
                DEMO_PREFIX + "City laboratory",
                f"pcr:{key}",
            )
        await conn.execute(
            """
            INSERT INTO registered_contacts (iin, registered_at, isolation_end, demo_key)
            VALUES ($1, $2, $3, 'contact:yellow')
            ON CONFLICT (demo_key) DO NOTHING
            """,
            people["yellow"].iin,
            now - timedelta(days=3),
            now + timedelta(days=11),
        )
        for key, name, kind, geometry in _ZONES:
            await conn.execute(
                """
                INSERT INTO zones (name, kind, geometry, demo_key) VALUES ($1, $2, $3, $4)
                ON CONFLICT (demo_key) DO UPDATE SET name = EXCLUDED.name,
                    kind = EXCLUDED.kind, geometry = EXCLUDED.geometry
                """,
                DEMO_PREFIX + name,
                kind,
                geometry,
                f"zone:{key}",
            )
        await conn.execute(
            """
            INSERT INTO doctors (full_name, district, invite_code, demo_key)
            VALUES ($1, 'Almaly', 'DEMO-DOCTOR', 'doctor:demo')
            ON CONFLICT (demo_key) DO NOTHING
            """,
            DEMO_PREFIX + "Dr. Aliya Demo",
        )
        counts = {}
        for table in ("venues", "pcr_results", "registered_contacts", "zones", "doctors"):
            counts[table] = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE demo_key IS NOT NULL"  # noqa: S608 - fixed names
            )
        return counts
