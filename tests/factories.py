"""Test data: valid IINs, phones, citizens, venues, registry records."""

from __future__ import annotations

import base64
import hashlib
import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientSession, FormData
from asyncpg import Record

from bots.sandbox.client import SandboxChat, SandboxClient
from citybots.wiring import Services
from geofence.zones import parse_zones
from services.checkpoints import Checkpoint
from services.permit_applications import Item, Outcome
from services.validation import _check_digit, parse_plate
from services.venues import AUTO_CHECKOUT_DEFAULT_MINUTES, NewVenue, Venue
from tests.integration.test_zones import zone

_serial = itertools.count(secrets.randbelow(5000) * 10)


def _checked(bodies: Iterator[str]) -> str:
    """The first of the eleven-digit ``bodies`` that has a check digit (some have none),
    with its check digit: a valid IIN or BIN."""
    for body in bodies:
        digit = _check_digit(body)
        if digit is not None:
            return body + str(digit)
    raise AssertionError("no body with a check digit")


def make_iin(birth: str = "900101", century_sex: str = "3") -> str:
    """A fresh valid IIN (unique within the test session)."""
    return _checked(f"{birth}{century_sex}{n % 10000:04d}" for n in _serial)


def tg_user_id() -> int:
    """A fresh Telegram user id (ten digits, as real ones are now)."""
    return 10**9 + secrets.randbelow(10**9)


def make_phone() -> str:
    return f"+7701{secrets.randbelow(10**7):07d}"


async def register_phone(services: Services, iin: str, phone: str) -> None:
    await services.citizens.pool.execute(
        "INSERT INTO citizen_phones (iin, phone) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        iin,
        phone,
    )


async def registered_phone(services: Services) -> tuple[str, str]:
    """A fresh IIN and phone, the phone on the register as that IIN's (not signed up)."""
    iin, phone = make_iin(), make_phone()
    await register_phone(services, iin, phone)
    return iin, phone


async def make_citizen(services: Services, tg_user_id: int) -> str:
    iin, phone = await registered_phone(services)
    result = await services.citizens.link(tg_user_id, iin, phone)
    assert result.iin == iin
    return iin


async def make_venue(
    services: Services,
    owner: int | None = None,
    *,
    capacity: int | None = None,
    entrances: tuple[str, ...] = ("Main",),
    auto_checkout_minutes: int = AUTO_CHECKOUT_DEFAULT_MINUTES,
    verified: bool = False,
    bin_: str = "971240001315",
) -> Venue:
    """A venue registered as in the staff bot; ``verified``: as if its owner had then
    proved to be the organisation's head (see :func:`verify_venue`)."""
    venue = await services.venues.register(
        NewVenue(
            owner_tg_user_id=owner or secrets.randbelow(10**9),
            bin=bin_,
            name=f"Test venue {secrets.token_hex(3)}",
            category="food",
            address="Abay Ave 1",
            latitude=43.24,
            longitude=76.93,
            capacity=capacity,
            entrances=entrances,
            auto_checkout_minutes=auto_checkout_minutes,
        )
    )
    if verified:
        await verify_venue(services, venue.id)
        venue = await services.venues.venue(venue.id)
    return venue


@dataclass(frozen=True)
class Door:
    """A venue and its QR codes by direction (``entry``, ``exit``)."""

    venue: Venue
    codes: dict[str, str]

    @property
    def entry(self) -> str:
        return self.codes["entry"]

    @property
    def exit(self) -> str:
        return self.codes["exit"]


async def venue_codes(services: Services, venue: Venue) -> dict[str, str]:
    """The venue's current QR codes (tokens) by direction."""
    return {c.direction: c.token for c in await services.venues.codes(venue.id)}


async def open_venue(services: Services, **options: Any) -> Door:
    """A venue made by :func:`make_venue` (with those options), and its codes."""
    venue = await make_venue(services, **options)
    return Door(venue, await venue_codes(services, venue))


async def verify_venue(services: Services, venue_id: int) -> None:
    """The venue verified with its owner, as the head's phone would have done (stored
    directly: no audit row, no message to the owner among a test's replies)."""
    await services.venues.pool.execute(
        "UPDATE venues v SET verified_at = now(), verified_how = 'head', verified_by = 'test',"
        " verified_owner = s.tg_user_id FROM venue_staff s"
        " WHERE v.id = $1 AND s.venue_id = v.id AND s.role = 'owner'",
        venue_id,
    )


async def add_pcr(
    services: Services,
    iin: str,
    result: str,
    *,
    result_at: datetime | None = None,
    laboratory: str = "Test lab",
) -> None:
    at = result_at or datetime.now(UTC) - timedelta(minutes=10)
    sampled = at - timedelta(hours=6)
    report = await services.importer.import_rows(
        "pcr", [(2, [iin, sampled.isoformat(), at.isoformat(), result, laboratory])]
    )
    assert report.accepted == 1, report.as_dict()


async def add_stay(
    services: Services, iin: str, venue: Venue, began: datetime, ended: datetime | None
) -> int:
    """A stay at ``venue`` from ``began`` to ``ended`` (None: still inside), as a QR
    check-in would have stored it then."""
    visit_id: int = await services.visits.pool.fetchval(
        "INSERT INTO visits (venue_id, iin, via, status, admitted, checked_in_at, "
        "checked_out_at, checkout_kind) VALUES ($1, $2, 'qr', 'green', true, $3, $4, $5) "
        "RETURNING id",
        venue.id,
        iin,
        began,
        ended,
        None if ended is None else "scan",
    )
    return visit_id


async def stayed_together(
    services: Services, venue: Venue, iins: list[str], *, hours_ago: int
) -> None:
    """Each of these people stayed an hour at ``venue``, all the same hour, which began
    ``hours_ago``."""
    began = datetime.now(UTC) - timedelta(hours=hours_ago)
    for iin in iins:
        await add_stay(services, iin, venue, began, began + timedelta(hours=1))


async def backdate_stays(services: Services, venue: Venue, *, by: timedelta) -> None:
    """The stays at ``venue`` began ``by`` earlier: people who scanned in together just now
    have shared the room long enough to be exposed (EXPOSURE_MIN_OVERLAP_MINUTES)."""
    await services.visits.pool.execute(
        "UPDATE visits SET checked_in_at = checked_in_at - $2::interval WHERE venue_id = $1",
        venue.id,
        by,
    )


async def add_contact(
    services: Services, iin: str, *, days: int = 14, ago: timedelta = timedelta(minutes=1)
) -> None:
    """A registered contact, registered ``ago``, isolated for ``days`` from then."""
    since = datetime.now(UTC) - ago
    report = await services.importer.import_rows(
        "contacts", [(2, [iin, since.isoformat(), (since + timedelta(days=days)).isoformat()])]
    )
    assert report.accepted == 1, report.as_dict()


def make_bin() -> str:
    """A fresh valid BIN (April 2020, resident, head office)."""
    return _checked(f"2004400{secrets.randbelow(10_000):04d}" for _ in itertools.count())


async def add_org(
    services: Services,
    *,
    allowed: bool = True,
    head_phone: str = "+77015550101",
    quota: int = 100,
    name: str = "Test LLP",
) -> str:
    bin_ = make_bin()
    await services.permits.pool.execute(
        "INSERT INTO organisations (bin, name, activity_code, head_phone, allowed, permit_quota)"
        " VALUES ($1, $2, '10.71', $3, $4, $5) ON CONFLICT DO NOTHING",
        bin_,
        name,
        head_phone,
        allowed,
        quota,
    )
    return bin_


async def add_permit(
    services: Services,
    bin_: str,
    *,
    iin: str | None = None,
    plate: str | None = None,
    state: str = "approved",
    register: str = "city",
    start: timedelta = timedelta(days=-1),
    end: timedelta = timedelta(days=5),
    purpose: str = "food delivery",
) -> None:
    now = datetime.now(UTC)
    await services.permits.pool.execute(
        "INSERT INTO permits (register, bin, iin, plate, purpose, valid_from, valid_until, "
        "state) VALUES ($7, $1, $2, $3, $8, $4, $5, $6)",
        bin_,
        iin,
        parse_plate(plate).value if plate else None,
        now + start,
        now + end,
        state,
        register,
        purpose,
    )


async def add_zone_with_checkpoint(
    services: Services, post_name: str, *, latitude: float = 43.26, longitude: float = 76.95
) -> tuple[str, Checkpoint]:
    """A quarantine zone in force since an hour ago and a roadblock checkpoint guarding it;
    returns the zone's name and the checkpoint."""
    name = f"Quarantine {secrets.token_hex(3)}"
    await services.zones.import_shapes(
        parse_zones(zone(name, 76.90, 0.02)),
        valid_from=datetime.now(UTC) - timedelta(hours=1),
        actor="t",
        source="t",
    )
    post = await services.checkpoints.add(
        post_name, latitude=latitude, longitude=longitude, zone_kind="quarantine",
        zone_name=name, register="roadblock", actor="test",
    )  # fmt: skip
    return name, post


async def applied_from_the_panel(
    services: Services, bin_: str, iins: list[str], *, purpose: str, days: int, now: datetime
) -> Outcome:
    """The organisation's application, made in the panel, for permits on the city's
    register for people by IIN, valid from ``now`` for ``days``."""
    return await services.applications.submit(
        bin_=bin_,
        applicant="test",
        register="city",
        purpose=purpose,
        valid_from=now,
        valid_until=now + timedelta(days=days),
        items=[Item(line, iin, None) for line, iin in enumerate(iins, start=1)],
        source="panel",
        now=now,
    )


def register_upload(kind: str, csv: str | bytes, filename: str = "register.csv") -> FormData:
    """The panel's registry import form: which register (``kind``) and the CSV file."""
    form = FormData()
    form.add_field("kind", kind)
    form.add_field("file", csv, filename=filename, content_type="text/csv")
    return form


async def refused_without_a_key(http: ClientSession, url: str, body: object, forged: str) -> None:
    """The API at ``url`` answers 401 to ``body`` posted with no key, then with a forged one."""
    for headers in ({}, {"Authorization": f"Bearer {forged}"}):
        async with http.post(url, json=body, headers=headers) as answer:
            assert answer.status == 401


def help_reply(lang: str, bot: str) -> str:
    """What /help answers in this bot."""
    from bots.registry import BOT_MODULES
    from flows.common.handlers import help_text

    return help_text(lang, BOT_MODULES[bot].PROFILE)


def scrypt_hash(password: str) -> str:
    """A panel password hash as stored before Argon2 (scrypt, n=2^14, r=8, p=1)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    encoded = [base64.b64encode(raw).decode() for raw in (salt, digest)]
    return "scrypt$16384$8$1$" + "$".join(encoded)


async def iin_typed(
    sandbox: SandboxClient, phone: str, iin: str, *, lang: str = "en", start: str = "/status"
) -> SandboxChat:
    """A new citizen-bot chat that asked for its status (``start``), shared ``phone`` with
    the contact button and then typed ``iin``; the bot's answer to the IIN is not read."""
    chat = await sandbox.chat("citizen", language_code=lang)
    await chat.send(start)
    await chat.reply()
    await chat.send_contact(phone)
    await chat.reply()
    await chat.send(iin)
    return chat


async def signed_up(
    sandbox: SandboxClient, services: Services, lang: str = "en"
) -> tuple[SandboxChat, str]:
    """A new citizen-bot user who signed up as people do: "My status", their phone shared
    with the contact button, then their IIN (a fresh one, its phone registered)."""
    from presentation.i18n import text

    iin, phone = await registered_phone(services)
    chat = await iin_typed(sandbox, phone, iin, lang=lang, start=text(lang, "citizen_menu.status"))
    await chat.replies(2)
    return chat, iin


async def joined_officer(
    sandbox: SandboxClient,
    services: Services,
    role: str,
    *,
    lang: str = "en",
    checkpoint: Checkpoint | None = None,
    menu: str | None = None,
) -> SandboxChat:
    """An officer (police, checkpoint or hotline agent) or a doctor (``role`` "doctor", in
    Almaly) who joined their bot with a fresh invite; with ``menu``, who then pressed that
    menu button (its answer read)."""
    from presentation.i18n import text
    from services.permits import OFFICER_BOT

    if role == "doctor":
        officer = await sandbox.chat("doctor", language_code=lang)
        token = await services.quarantine.create_doctor_invite("Almaly", created_by="test")
    else:
        officer = await sandbox.chat(OFFICER_BOT[role], language_code=lang)
        token = await services.permits.create_officer_invite(
            role, created_by="test", checkpoint_id=checkpoint.id if checkpoint else None
        )
    await officer.send(f"/start {token}")
    await officer.reply()
    if menu is not None:
        await officer.send(text(lang, menu))
        await officer.reply()
    return officer


async def scan(chat: SandboxChat, token: str) -> dict[str, Any]:
    """The person scans a venue's QR code (the bot's deep link); the bot's answer."""
    await chat.send(f"/start {token}")
    return await chat.reply()


async def venue_card(staff: SandboxChat, venue: Venue, lang: str) -> dict[str, Any]:
    """The staff member opens the venue's card from their venues; the card."""
    from presentation.i18n import text

    await staff.send(text(lang, "staff_menu.venues"))
    await staff.reply()
    await staff.press(venue.name)
    return await staff.reply()


async def staffed_venue(
    sandbox: SandboxClient, services: Services, *, worker_lang: str = "en"
) -> tuple[SandboxChat, Venue, SandboxChat]:
    """A verified venue with its owner (in English) and a worker who joined it with the
    owner's invite: the owner's chat, the venue, the worker's chat."""
    owner = await sandbox.chat("staff", language_code="en")
    venue = await make_venue(services, owner=owner.user_id, verified=True)
    worker = await sandbox.chat("staff", language_code=worker_lang)
    await worker.send(f"/start {await services.venues.create_invite(venue.id, owner.user_id)}")
    await worker.reply()
    return owner, venue, worker


async def last_stay(services: Services, iin: str, venue_id: int) -> Record:
    """How the person's latest stay at the venue stands: its checkout time and kind."""
    row = await services.visits.pool.fetchrow(
        "SELECT checked_out_at, checkout_kind FROM visits WHERE iin = $1 AND venue_id = $2"
        " ORDER BY id DESC LIMIT 1",
        iin,
        venue_id,
    )
    assert row is not None
    return row


async def inside_together(
    sandbox: SandboxClient, services: Services, door: Door, *, other_lang: str = "en"
) -> tuple[SandboxChat, str, SandboxChat]:
    """Two people who signed up, scanned in at the door and have been inside together for
    an hour (long enough to be exposed): the first one's chat and IIN, the other's chat."""
    first_chat, first = await signed_up(sandbox, services)
    other_chat, _ = await signed_up(sandbox, services, lang=other_lang)
    for chat in (first_chat, other_chat):
        await scan(chat, door.entry)
    await backdate_stays(services, door.venue, by=timedelta(hours=1))
    return first_chat, first, other_chat
