"""An obviously-labelled demo city, for trying the platform: every name starts with
[DEMO], every IIN encodes a birth in the 1800s (century digit 1 or 2, so it cannot
be a living resident's), and every row carries a demo_key so loading twice changes
nothing."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.db import Connection
from services.demo_field import load_field_demo
from services.feeds.demo import remove_demo_feeds
from services.validation import parse_bin, with_check_digit

DEMO_PREFIX = "[DEMO] "


def _with_check_digit(body: str) -> str:
    """``body`` (11 digits) with the check digit that makes it a valid IIN or BIN."""
    number = with_check_digit(body)
    if number is None:
        raise ValueError(f"no check digit for {body}")
    return number


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


async def load_demo_data(
    conn: Connection,
    now: datetime | None = None,
    *,
    topics: Sequence[str] = (),
    districts: Sequence[str] = (),
    timezone: str = "Asia/Almaty",
) -> dict[str, int]:
    """Upsert the demo city in one transaction; returns how many rows of each kind exist.
    With hotline ``topics`` and ``districts``, the history has calls too; ``timezone``:
    the city's, whose today the brigades' demo tasks are for."""
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
        await _load_permits_and_checkpoint(conn, now, people)
        await _load_history(conn, now, topics=topics, districts=districts)
        await load_field_demo(conn, now, ZoneInfo(timezone))
        counts = {}
        for table in DEMO_TABLES[:-1]:  # the panel user comes later, from the command
            counts[table] = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE demo_key IS NOT NULL"  # noqa: S608 - fixed names
            )
        counts["daily_indicators"] = await conn.fetchval(
            "SELECT count(*) FROM daily_indicators WHERE entered_by = $1", DEMO_ACTOR
        )
        return counts


# Tables holding demo rows (marked by demo_key), children before their parents.
DEMO_TABLES = (
    "ambulance_calls",
    "brigades",
    "passings",
    "permits",
    "hotline_calls",
    "hotline_unanswered",
    "pcr_results",
    "registered_contacts",
    "venues",
    "zones",
    "doctors",
    "checkpoints",
    "officers",
    "panel_users",
)
DEMO_ACTOR = "demo-data"
HISTORY_DAYS = 60
# An organisation allowed to receive permits (the BIN above is on the register but not
# allowed, to show a refusal): its head applies in the citizen bot with this phone.
DEMO_PERMITS_BIN = _with_check_digit("97124000222")
DEMO_PERMITS_HEAD_PHONE = "+77010000011"
DEMO_CHECKPOINT = DEMO_PREFIX + "Kapshagay road post"
DEMO_POLICE_ID = -1001  # Telegram ids are positive: these never collide with a person
DEMO_AGENT_ID = -1002
DEMO_PERMITS_OFFICER = "demo-permits"
_LABS = (DEMO_PREFIX + "City laboratory", DEMO_PREFIX + "Central laboratory")
_PURPOSES = ("work", "delivery", "medical", "utilities")


def _history_iin(day: int, serial: int) -> str:
    """A made-up IIN for the demo history: born in the 1800s (century digit 1), the day
    and serial make it unique; a serial whose check digit cannot exist is skipped."""
    born = date(1850, 1, 1) + timedelta(days=day)
    for candidate in range(serial * 2, serial * 2 + 2):
        try:
            return _with_check_digit(f"{born:%y%m%d}1{candidate:04d}")
        except ValueError:
            continue
    raise ValueError("no IIN")


def _curve(day: int) -> float:
    """One epidemic wave over the history: low, a peak two thirds of the way, easing."""
    return math.exp(-(((day - HISTORY_DAYS * 0.6) / (HISTORY_DAYS * 0.2)) ** 2))


async def _load_permits_and_checkpoint(
    conn: Connection, now: datetime, people: dict[str, DemoPerson]
) -> None:
    code = await conn.fetchval("SELECT code FROM allowed_activities ORDER BY code LIMIT 1")
    await conn.execute(
        """
        INSERT INTO organisations (bin, name, activity_code, head_phone, allowed, source)
        VALUES ($1, $2, $3, $4, true, 'demo')
        ON CONFLICT (bin) DO NOTHING
        """,
        DEMO_PERMITS_BIN,
        DEMO_PREFIX + "City Bakery LLP",
        code or "10.71",
        DEMO_PERMITS_HEAD_PHONE,
    )
    permits = (
        ("green", "city", "approved", "work", timedelta(days=-1), timedelta(days=13)),
        ("blue", "roadblock", "approved", "delivery", timedelta(days=-1), timedelta(days=6)),
        ("blue", "city", "pending", "medical", timedelta(0), timedelta(days=7)),
    )
    for n, (key, register, state, purpose, start, end) in enumerate(permits):
        await conn.execute(
            """
            INSERT INTO permits (register, bin, iin, purpose, valid_from, valid_until, state,
                                 decided_by, decided_at, demo_key)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (demo_key) DO NOTHING
            """,
            register,
            DEMO_PERMITS_BIN,
            people[key].iin,
            purpose,
            now + start,
            now + end,
            state,
            DEMO_ACTOR if state == "approved" else None,
            now if state == "approved" else None,
            f"permit:{n}",
        )
    checkpoint_id = await conn.fetchval(
        """
        INSERT INTO checkpoints (name, latitude, longitude, zone_kind, zone_name, register,
                                 qr_token, created_by, demo_key)
        VALUES ($1, 43.36, 77.05, 'sector', $2, 'roadblock', 'cp_demo_kapshagay', $3,
                'checkpoint:kapshagay')
        ON CONFLICT (demo_key) DO UPDATE SET name = EXCLUDED.name RETURNING id
        """,
        DEMO_CHECKPOINT,
        DEMO_PREFIX + "Sector 1 (Almaly)",
        DEMO_ACTOR,
    )
    for tg_id, role, name in (
        (DEMO_POLICE_ID, "checkpoint", "Demo checkpoint officer"),
        (DEMO_AGENT_ID, "agent", "Demo hotline agent"),
    ):
        await conn.execute(
            "INSERT INTO officers (tg_user_id, role, full_name, demo_key)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            tg_id,
            role,
            DEMO_PREFIX + name,
            f"officer:{role}",
        )
    await conn.execute(
        "INSERT INTO checkpoint_officers (tg_user_id, checkpoint_id, assigned_by)"
        " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        DEMO_POLICE_ID,
        checkpoint_id,
        DEMO_ACTOR,
    )
    rng = random.Random(7)  # noqa: S311 - made-up figures, seeded: a reload is the same
    today = now.date()
    rows = []
    for back in range(1, 15):  # up to yesterday: a reload today adds nothing
        day = today - timedelta(days=back)
        for n in range(12 + rng.randrange(12)):
            at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                minutes=rng.randrange(24 * 60)
            )
            plate = f"{rng.randrange(100, 1000)}DMO{rng.randrange(1, 20):02d}"
            result = "valid" if rng.random() < 0.8 else "none"
            rows.append(
                (
                    checkpoint_id,
                    rng.choice(("in", "out")),
                    at,
                    plate,
                    DEMO_POLICE_ID,
                    result,
                    f"passing:{day}:{n}",
                )
            )
    await conn.executemany(
        "INSERT INTO passings (checkpoint_id, direction, at, plate, officer, permit_result,"
        " demo_key) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (demo_key) DO NOTHING",
        rows,
    )


async def _load_history(
    conn: Connection, now: datetime, *, topics: Sequence[str], districts: Sequence[str]
) -> None:
    """Sixty days up to yesterday of made-up tests, cases, contacts, calls and hospital
    figures, so the situation centre shows a history rather than zeros. Keys are by date:
    a load on a later day adds the days since and changes none of the others."""
    rng = random.Random(42)  # noqa: S311 - made-up figures, seeded: a reload is the same
    tests, contacts, calls, indicators = [], [], [], []
    first = now.date() - timedelta(days=HISTORY_DAYS)  # up to yesterday
    for day in range(HISTORY_DAYS):
        when = first + timedelta(days=day)
        midnight = datetime(when.year, when.month, when.day, tzinfo=UTC)
        wave = _curve(day)
        cases = round(2 + 30 * wave + rng.random() * 3)
        done = cases * 3 + 30 + rng.randrange(15)
        for n in range(done):
            result_at = midnight + timedelta(minutes=rng.randrange(8 * 60, 20 * 60))
            tests.append(
                (
                    _history_iin(day, n),
                    result_at - timedelta(hours=20),
                    result_at,
                    "positive" if n < cases else "negative",
                    _LABS[n % 2],
                    f"pcr:h:{when}:{n}",
                )
            )
        for n in range(round(cases * 1.5)):
            registered = midnight + timedelta(minutes=rng.randrange(9 * 60, 18 * 60))
            contacts.append(
                (
                    _history_iin(day, 2500 + n),
                    registered,
                    registered + timedelta(days=14),
                    f"contact:h:{when}:{n}",
                )
            )
        for n in range(round(8 + 25 * wave) if topics and districts else 0):
            at = midnight + timedelta(minutes=rng.randrange(8 * 60, 22 * 60))
            outcome = rng.choices(("answered", "callback", "referred", "ambulance"), (8, 3, 2, 1))
            calls.append(
                (
                    DEMO_AGENT_ID,
                    rng.choice(topics),
                    outcome[0],
                    rng.choice(districts),
                    at,
                    f"call:{when}:{n}",
                )
            )
        occupied = round(300 + 900 * wave + rng.randrange(40))
        indicators += [
            (when, "beds_total", 1500),
            (when, "beds_occupied", occupied),
            (when, "lab_capacity", 220),
        ]
    await conn.executemany(
        "INSERT INTO pcr_results (iin, sampled_at, result_at, result, laboratory, demo_key)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        tests,
    )
    await conn.executemany(
        "INSERT INTO registered_contacts (iin, registered_at, isolation_end, demo_key)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        contacts,
    )
    await conn.executemany(
        "INSERT INTO hotline_calls (agent, topic, outcome, district, at, demo_key)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        calls,
    )
    await conn.executemany(
        "INSERT INTO daily_indicators (day, indicator, value, entered_by)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        [(d, name, value, DEMO_ACTOR) for d, name, value in indicators],
    )
    questions = (
        ("en", "can my cat get the virus?", "out_of_scope", 0.31),
        ("ru", "можно ли ездить на дачу в выходные", "faq_permit_howto", 0.42),
        ("kk", "балабақша қашан ашылады", "out_of_scope", 0.28),
    )
    for n, (lang, question, intent, confidence) in enumerate(questions):
        await conn.execute(
            "INSERT INTO hotline_unanswered (text, language, top_intent, confidence, asked_at,"
            " demo_key) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            question,
            lang,
            intent,
            confidence,
            now - timedelta(hours=3 * n + 1),
            f"unanswered:{n}",
        )


_BEFORE_REMOVING = (
    "DELETE FROM exposure_notices"
    " WHERE venue_id IN (SELECT id FROM venues WHERE demo_key IS NOT NULL)",
    "DELETE FROM visits WHERE venue_id IN (SELECT id FROM venues WHERE demo_key IS NOT NULL)",
    "DELETE FROM passings"
    " WHERE checkpoint_id IN (SELECT id FROM checkpoints WHERE demo_key IS NOT NULL)",
    "DELETE FROM officer_invites"
    " WHERE checkpoint_id IN (SELECT id FROM checkpoints WHERE demo_key IS NOT NULL)",
    "DELETE FROM checkpoint_officers"
    " WHERE checkpoint_id IN (SELECT id FROM checkpoints WHERE demo_key IS NOT NULL)",
    "DELETE FROM checkpoint_officers WHERE tg_user_id IN"
    " (SELECT tg_user_id FROM officers WHERE demo_key IS NOT NULL)",
    "UPDATE passings SET zone_id = NULL"
    " WHERE zone_id IN (SELECT id FROM zones WHERE demo_key IS NOT NULL)",
    "UPDATE doctors d SET demo_key = NULL WHERE demo_key IS NOT NULL"
    " AND EXISTS (SELECT 1 FROM quarantine_cases c WHERE c.doctor_id = d.id)",
)


async def remove_demo_data(conn: Connection) -> dict[str, int]:
    """Every demo row (demo_key set, demo indicators, the demo organisations) away, in
    one transaction; returns how many of each kind went. Roll-ups need a rebuild after."""
    removed: dict[str, int] = {}
    async with conn.transaction():
        # what people did with the demo (a visit, a passing, an invite to its checkpoint)
        # goes with it; a demo doctor who has real cases stays
        for statement in _BEFORE_REMOVING:
            await conn.execute(statement)
        for table in DEMO_TABLES:
            status = await conn.execute(
                f"DELETE FROM {table} WHERE demo_key IS NOT NULL"  # noqa: S608 - fixed names
            )
            removed[table] = int(status.split()[-1])
        status = await conn.execute(
            "DELETE FROM daily_indicators WHERE entered_by = $1", DEMO_ACTOR
        )
        removed["daily_indicators"] = int(status.split()[-1])
        removed["feed_records"] = await remove_demo_feeds(conn)
        status = await conn.execute(
            "DELETE FROM organisations o WHERE source = 'demo' AND NOT EXISTS"
            " (SELECT 1 FROM permits p WHERE p.bin = o.bin)"
            " AND NOT EXISTS (SELECT 1 FROM org_heads h WHERE h.bin = o.bin)"
            " AND NOT EXISTS (SELECT 1 FROM permit_applications a WHERE a.bin = o.bin)"
        )
        removed["organisations"] = int(status.split()[-1])
    return removed
