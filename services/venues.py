"""Venues, their entrances and QR codes, staff and invites, and their verification.

A QR code belongs to a business, never to a visitor: one entry and one exit code per
entrance, each an unguessable token (128 random bits) in the deep link
``https://t.me/<citizen bot>?start=<token>``. Rotating revokes the old codes.

Anyone may register a venue under any well-formed BIN, and its QR codes work at once. Its
staff may look people up by IIN (check-in and check-out by IIN) only once it is
**verified**: its owner proved to be the head of the organisation with that BIN (the
head's phone on the organisations' register, services/organisations.py), or a registry
officer approved it on the panel. Then only the owner verified with it and the staff that
owner invited may look people up there.
"""

from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from redis.asyncio import Redis

from services.audit import record
from services.coalesce import Coalescer
from services.db import Connection, fetch_all, of_row, row_or, value_or
from services.errors import Refusal
from services.localcache import LocalCache, publish
from services.organisations import NotHead, prove_head
from services.outbox import enqueue
from services.validation import is_deep_link_payload, parse_bin, parse_coordinates

CATEGORIES = ("shop", "food", "mall", "culture", "sport", "beauty", "office", "other")
TOKEN_PREFIX = {"entry": "in_", "exit": "out_"}
MAX_ENTRANCES = 10
# How long after check-in a stay nobody closed is closed by the auto-checkout job.
AUTO_CHECKOUT_DEFAULT_MINUTES = 240
AUTO_CHECKOUT_MIN_MINUTES = 15
AUTO_CHECKOUT_MAX_MINUTES = 24 * 60
_HOURS_MINUTES = re.compile(r"([0-9]{1,2}):([0-5][0-9])")
_HOURS = re.compile(r"([0-9]{1,2})(?:[.,]([0-9]{1,2}))?")


class VenueError(Refusal):
    """A venue request refused; ``code`` is the text key that explains it."""


class LookupAccess(enum.Enum):
    """Whether a person may look people up by IIN at a venue, and if not, why."""

    ALLOWED = "allowed"
    NOT_STAFF = "not_staff"  # not on the venue's staff
    UNVERIFIED = "unverified"  # the venue is not verified
    NOT_INVITED = "not_invited"  # on the staff, but not the verified owner or their invitee


class LookupRefused(Exception):
    """A look-up by IIN the person may not make at that venue (``access`` says why)."""

    def __init__(self, access: LookupAccess) -> None:
        super().__init__(access.value)
        self.access = access


class CodeState(enum.Enum):
    VALID = "valid"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Venue:
    id: int
    name: str
    bin: str
    category: str
    address: str
    capacity: int | None
    capacity_policy: str
    auto_checkout_minutes: int
    verified_at: datetime | None = None

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


@dataclass(frozen=True)
class VenueCode:
    token: str
    entrance_id: int
    entrance: str
    direction: str


@dataclass(frozen=True)
class CodeTarget:
    state: CodeState
    venue: Venue | None = None
    entrance_id: int | None = None
    direction: str | None = None


@dataclass(frozen=True)
class NewVenue:
    owner_tg_user_id: int
    bin: str
    name: str
    category: str
    address: str
    latitude: float
    longitude: float
    capacity: int | None
    entrances: Sequence[str]
    auto_checkout_minutes: int = AUTO_CHECKOUT_DEFAULT_MINUTES


def parse_auto_checkout(raw: str) -> int:
    """Minutes from what a person typed: hours ("3", "1.5", "1,5") or hours:minutes
    ("2:30"), within the bounds; VenueError("venue.auto_checkout") otherwise."""
    typed = raw.strip()
    if match := _HOURS_MINUTES.fullmatch(typed):
        minutes = int(match[1]) * 60 + int(match[2])
    elif match := _HOURS.fullmatch(typed):
        fraction = match[2] or "0"
        minutes = int(match[1]) * 60 + round(int(fraction) * 60 / 10 ** len(fraction))
    else:
        raise VenueError("venue.auto_checkout")
    check_auto_checkout(minutes)
    return minutes


def check_auto_checkout(minutes: int) -> None:
    if not AUTO_CHECKOUT_MIN_MINUTES <= minutes <= AUTO_CHECKOUT_MAX_MINUTES:
        raise VenueError("venue.auto_checkout")


def new_token(direction: str) -> str:
    return TOKEN_PREFIX[direction] + secrets.token_urlsafe(16)


_venue = of_row(Venue)


_VENUE_COLUMNS = (
    "id, name, bin, category, address, capacity, capacity_policy, auto_checkout_minutes,"
    " verified_at"
)

# An invite is used once: the venue it lets its user join, no row when it was used.
_USE_INVITE = (
    "UPDATE staff_invites SET used_by = $2, used_at = now() "
    "WHERE code = $1 AND used_by IS NULL RETURNING venue_id"
)
# A venue to verify, locked, with its owner (NULL when nobody registered it in the bot).
_VENUE_TO_VERIFY = (
    "SELECT v.name, v.bin, v.verified_at, s.tg_user_id AS owner FROM venues v"
    " LEFT JOIN venue_staff s ON s.venue_id = v.id AND s.role = 'owner'"
    " WHERE v.id = $1 FOR UPDATE OF v"
)
# A verification taken back: the venue's name and the owner it was verified with.
_UNVERIFY = (
    "UPDATE venues v SET verified_at = NULL, verified_how = NULL,"
    " verified_by = NULL, verified_owner = NULL"
    " FROM venues old WHERE v.id = $1 AND old.id = v.id"
    " AND old.verified_at IS NOT NULL"
    " RETURNING v.name, old.verified_owner AS owner"
)

# Who may look people up by IIN at a venue: the owner it was verified with, and staff who
# joined by an invite that owner made.
_LOOKUP_ACCESS = """
SELECT v.verified_at IS NOT NULL AS verified, s.role IS NOT NULL AS on_staff,
       s.tg_user_id = v.verified_owner
       OR EXISTS (SELECT 1 FROM staff_invites i
                   WHERE i.venue_id = v.id AND i.used_by = s.tg_user_id
                     AND i.created_by = v.verified_owner) AS invited
  FROM venues v LEFT JOIN venue_staff s ON s.venue_id = v.id AND s.tg_user_id = $2
 WHERE v.id = $1
"""


async def access_of(
    conn: Connection | asyncpg.Pool, venue_id: int, tg_user_id: int
) -> LookupAccess:
    """Whether ``tg_user_id`` may look people up by IIN at the venue (on ``conn``, inside
    the caller's transaction when it has one)."""
    row = await conn.fetchrow(_LOOKUP_ACCESS, venue_id, tg_user_id)
    if row is None or not row["on_staff"]:
        return LookupAccess.NOT_STAFF
    if not row["verified"]:
        return LookupAccess.UNVERIFIED
    if not row["invited"]:
        return LookupAccess.NOT_INVITED
    return LookupAccess.ALLOWED


async def _issue_codes(conn: Connection, entrance_id: int) -> None:
    for direction in ("entry", "exit"):
        await conn.execute(
            "INSERT INTO venue_codes (token, entrance_id, direction) VALUES ($1, $2, $3)",
            new_token(direction),
            entrance_id,
            direction,
        )


CODE_PREFIXES = tuple(TOKEN_PREFIX.values())


class VenueService:
    def __init__(self, pool: asyncpg.Pool, redis: Redis | None = None) -> None:
        self.pool = pool
        self.redis = redis
        # What scanned tokens are, kept true by the invalidations that rotating codes and
        # changing a venue publish (services/localcache.py).
        self.local: LocalCache[CodeTarget] = LocalCache("venue-code", ttl=300.0)
        # A crowd's scans of codes not cached yet: one query for those of a moment.
        self._resolving = Coalescer(self._resolve_list)

    async def _forget_codes(self, tokens: list[str]) -> None:
        self.local.invalidate_local(tokens)
        if self.redis is not None:
            await publish(self.redis, self.local.namespace, tokens)

    async def _forget_venue(self, venue_id: int) -> None:
        tokens = await self.pool.fetch(
            "SELECT c.token FROM venue_codes c JOIN entrances e ON e.id = c.entrance_id "
            "WHERE e.venue_id = $1",
            venue_id,
        )
        await self._forget_codes([r["token"] for r in tokens])

    async def register(self, new: NewVenue) -> Venue:
        """Create the venue, its entrances and their codes, and make the caller its owner."""
        parse_bin(new.bin)
        parse_coordinates(new.latitude, new.longitude)
        name = new.name.strip()
        if not 1 <= len(name) <= 200:
            raise VenueError("venue.name")
        if new.category not in CATEGORIES:
            raise VenueError("venue.category")
        if new.capacity is not None and not 1 <= new.capacity <= 100_000:
            raise VenueError("venue.capacity")
        entrances = [e.strip() for e in new.entrances if e.strip()] or ["Main"]
        if len(entrances) > MAX_ENTRANCES or len(set(entrances)) != len(entrances):
            raise VenueError("venue.entrances")
        check_auto_checkout(new.auto_checkout_minutes)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"""
                INSERT INTO venues (bin, name, category, address, latitude, longitude, capacity,
                                    auto_checkout_minutes)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_VENUE_COLUMNS}
                """,  # noqa: S608 - a fixed column list
                new.bin,
                name,
                new.category,
                new.address.strip()[:300],
                new.latitude,
                new.longitude,
                new.capacity,
                new.auto_checkout_minutes,
            )
            assert row is not None
            await conn.execute(
                "INSERT INTO venue_staff (venue_id, tg_user_id, role) VALUES ($1, $2, 'owner')",
                row["id"],
                new.owner_tg_user_id,
            )
            for entrance in entrances:
                entrance_id = await conn.fetchval(
                    "INSERT INTO entrances (venue_id, name) VALUES ($1, $2) RETURNING id",
                    row["id"],
                    entrance,
                )
                await _issue_codes(conn, entrance_id)
        return _venue(row)

    async def venue(self, venue_id: int) -> Venue:
        row = await row_or(
            self.pool,
            f"SELECT {_VENUE_COLUMNS} FROM venues WHERE id = $1",  # noqa: S608
            venue_id,
            refusal=VenueError("venue.not_found"),
        )
        return _venue(row)

    async def venues_of(self, tg_user_id: int) -> list[tuple[Venue, str]]:
        """The venues a person owns or works at, with their role."""
        rows = await self.pool.fetch(
            f"""
            SELECT {", ".join("v." + c.strip() for c in _VENUE_COLUMNS.split(","))}, s.role
              FROM venue_staff s JOIN venues v ON v.id = s.venue_id
             WHERE s.tg_user_id = $1 ORDER BY v.name
            """,  # noqa: S608
            tg_user_id,
        )
        return [(_venue(r), r["role"]) for r in rows]

    async def role(self, venue_id: int, tg_user_id: int) -> str | None:
        value = await self.pool.fetchval(
            "SELECT role FROM venue_staff WHERE venue_id = $1 AND tg_user_id = $2",
            venue_id,
            tg_user_id,
        )
        return str(value) if value is not None else None

    async def codes(self, venue_id: int) -> list[VenueCode]:
        return await fetch_all(
            self.pool,
            of_row(VenueCode),
            """
            SELECT c.token, e.id AS entrance_id, e.name AS entrance, c.direction
              FROM venue_codes c JOIN entrances e ON e.id = c.entrance_id
             WHERE e.venue_id = $1 AND c.revoked_at IS NULL
             ORDER BY e.id, c.direction
            """,
            venue_id,
        )

    async def rotate_codes(self, venue_id: int) -> list[VenueCode]:
        """Revoke every current code of the venue and issue new ones (one transaction)."""
        async with self.pool.acquire() as conn, conn.transaction():
            entrances = await conn.fetch(
                "SELECT id FROM entrances WHERE venue_id = $1 FOR UPDATE", venue_id
            )
            revoked = await conn.fetch(
                "UPDATE venue_codes SET revoked_at = now() WHERE revoked_at IS NULL "
                "AND entrance_id = ANY($1::bigint[]) RETURNING token",
                [e["id"] for e in entrances],
            )
            for entrance in entrances:
                await _issue_codes(conn, entrance["id"])
        await self._forget_codes([r["token"] for r in revoked])
        return await self.codes(venue_id)

    async def resolve(self, token: str) -> CodeTarget:
        """What a scanned token is: a current code, a revoked one, or nothing we issued."""
        return await self._resolving(token)

    async def _resolve_list(self, tokens: list[str]) -> list[CodeTarget]:
        found = await self.resolve_many(tokens)
        return [found[token] for token in tokens]

    async def resolve_many(self, tokens: Iterable[str]) -> dict[str, CodeTarget]:
        """:meth:`resolve` for many tokens: from the in-process cache when it is
        listening, the rest in one query."""
        found: dict[str, CodeTarget] = {}
        missing: dict[str, int] = {}
        for token in tokens:
            if not is_deep_link_payload(token) or not token.startswith(
                tuple(TOKEN_PREFIX.values())
            ):
                found[token] = CodeTarget(CodeState.UNKNOWN)
                continue
            target = self.local.get(token)
            if target is not None:
                found[token] = target
            else:
                missing[token] = self.local.generation(token)
        if not missing:
            return found
        rows = await self.pool.fetch(
            f"""
            SELECT c.token, c.entrance_id, c.direction, c.revoked_at,
                   {", ".join("v." + c.strip() for c in _VENUE_COLUMNS.split(","))}
              FROM venue_codes c JOIN entrances e ON e.id = c.entrance_id
              JOIN venues v ON v.id = e.venue_id
             WHERE c.token = ANY($1::text[])
            """,  # noqa: S608
            list(missing),
        )
        for row in rows:
            if row["revoked_at"] is not None:
                target = CodeTarget(CodeState.REVOKED, _venue(row))
            else:
                target = CodeTarget(
                    CodeState.VALID, _venue(row), row["entrance_id"], row["direction"]
                )
            found[row["token"]] = target
            self.local.put(row["token"], target, missing[row["token"]])
        for token in missing:
            found.setdefault(token, CodeTarget(CodeState.UNKNOWN))
        return found

    async def create_invite(self, venue_id: int, owner_tg_user_id: int) -> str:
        if await self.role(venue_id, owner_tg_user_id) != "owner":
            raise VenueError("venue.not_owner")
        code = "staff_" + secrets.token_urlsafe(12)
        await self.pool.execute(
            "INSERT INTO staff_invites (code, venue_id, created_by) VALUES ($1, $2, $3)",
            code,
            venue_id,
            owner_tg_user_id,
        )
        return code

    async def accept_invite(self, code: str, tg_user_id: int) -> Venue:
        """Join a venue's staff by an invite; each invite works once."""
        async with self.pool.acquire() as conn, conn.transaction():
            venue_id = await value_or(
                conn, _USE_INVITE, code, tg_user_id, refusal=VenueError("venue.invite_invalid")
            )
            await conn.execute(
                "INSERT INTO venue_staff (venue_id, tg_user_id, role) VALUES ($1, $2, 'staff') "
                "ON CONFLICT DO NOTHING",
                venue_id,
                tg_user_id,
            )
        return await self.venue(venue_id)

    async def lookup_access(self, venue_id: int, tg_user_id: int) -> LookupAccess:
        """Whether the person may look people up by IIN at the venue (see the module)."""
        return await access_of(self.pool, venue_id, tg_user_id)

    async def verify_by_head(self, venue_id: int, tg_user_id: int, phone: str) -> Venue:
        """The owner shared ``phone``, their own: when it is the head's phone of the
        organisation the venue was registered under (services/organisations.py), the
        venue is verified with this owner. VenueError ``venue.not_owner``,
        ``venue.too_many_attempts`` or ``venue.not_head`` otherwise."""
        if await self.role(venue_id, tg_user_id) != "owner":
            raise VenueError("venue.not_owner")
        venue = await self.venue(venue_id)
        if venue.verified:
            return venue
        assert self.redis is not None, "attempts are counted in Redis"
        try:
            await prove_head(
                self.pool,
                self.redis,
                tg_user_id=tg_user_id,
                bin_=venue.bin,
                phone=phone,
                purpose="venue",
            )
        except NotHead as error:
            raise VenueError(f"venue.{error.code}") from None
        await self._set_verified(venue_id, how="head", actor=f"tg:{tg_user_id}")
        return await self.venue(venue_id)

    async def approve(self, venue_id: int, *, officer: str) -> Venue:
        """A registry officer verifies the venue with its owner (whose organisation need
        not be on the register); the owner is told in the staff bot. VenueError
        ``venue.already_verified`` or ``venue.no_owner`` (a venue nobody registered in
        the bot, such as the demo's)."""
        await self._set_verified(venue_id, how="officer", actor=officer)
        return await self.venue(venue_id)

    async def _set_verified(self, venue_id: int, *, how: str, actor: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            venue = await row_or(
                conn, _VENUE_TO_VERIFY, venue_id, refusal=VenueError("venue.not_found")
            )
            if venue["verified_at"] is not None:
                raise VenueError("venue.already_verified")
            if venue["owner"] is None:
                raise VenueError("venue.no_owner")
            await conn.execute(
                "UPDATE venues SET verified_at = now(), verified_how = $2, verified_by = $3,"
                " verified_owner = $4 WHERE id = $1",
                venue_id,
                how,
                actor,
                venue["owner"],
            )
            await record(
                conn,
                actor=actor,
                action="venue.verified",
                subject=f"venue:{venue_id}",
                details={"how": how, "bin": venue["bin"], "owner": venue["owner"]},
            )
            if how == "officer":
                await enqueue(
                    conn,
                    bot="staff",
                    chat_id=venue["owner"],
                    kind="venue_verified",
                    params={"venue": venue["name"]},
                )
        await self._forget_venue(venue_id)

    async def withdraw_verification(self, venue_id: int, *, officer: str, reason: str) -> None:
        """A registry officer takes a venue's verification back (a misused account, say):
        its staff can no longer look anyone up by IIN until it is verified again; the
        owner is told. VenueError ``venue.not_verified`` or ``venue.reason_needed``."""
        reason = reason.strip()[:300]
        if not reason:
            raise VenueError("venue.reason_needed")
        async with self.pool.acquire() as conn, conn.transaction():
            venue = await row_or(
                conn, _UNVERIFY, venue_id, refusal=VenueError("venue.not_verified")
            )
            await record(
                conn,
                actor=officer,
                action="venue.unverified",
                subject=f"venue:{venue_id}",
                details={"reason": reason},
            )
            await enqueue(
                conn,
                bot="staff",
                chat_id=venue["owner"],
                kind="venue_unverified",
                params={"venue": venue["name"], "reason": reason},
            )
        await self._forget_venue(venue_id)

    async def overview(self, search: str = "", limit: int = 100) -> list[asyncpg.Record]:
        """Venues by name, address or BIN, with how many are inside now (open stays),
        fullest first, and whether each is verified (how, by whom) and its BIN is on the
        organisations' register."""
        return list(
            await self.pool.fetch(
                "SELECT v.id, v.name, v.address, v.capacity, coalesce(o.inside, 0) AS inside,"
                " v.bin, v.verified_at, v.verified_how, v.verified_by,"
                " EXISTS (SELECT 1 FROM organisations r WHERE r.bin = v.bin) AS in_register,"
                " EXISTS (SELECT 1 FROM venue_staff s WHERE s.venue_id = v.id"
                " AND s.role = 'owner') AS has_owner"
                " FROM venues v LEFT JOIN (SELECT venue_id, count(*) AS inside FROM open_stays"
                " GROUP BY venue_id) o"
                " ON o.venue_id = v.id"
                " WHERE $1 = '' OR v.name ILIKE '%' || $1 || '%'"
                " OR v.address ILIKE '%' || $1 || '%' OR v.bin = $1"
                " ORDER BY inside DESC, v.name LIMIT $2",
                search.replace("%", "").replace("_", ""),
                limit,
            )
        )

    async def set_capacity(self, venue_id: int, capacity: int | None, policy: str) -> None:
        if policy not in ("warn", "refuse") or (
            capacity is not None and not 1 <= capacity <= 100_000
        ):
            raise VenueError("venue.capacity")
        await self.pool.execute(
            "UPDATE venues SET capacity = $2, capacity_policy = $3 WHERE id = $1",
            venue_id,
            capacity,
            policy,
        )
        await self._forget_venue(venue_id)

    async def set_auto_checkout(self, venue_id: int, minutes: int) -> None:
        """The venue's auto-checkout time; the job measures stays open now by it too."""
        check_auto_checkout(minutes)
        await self.pool.execute(
            "UPDATE venues SET auto_checkout_minutes = $2 WHERE id = $1", venue_id, minutes
        )
        await self._forget_venue(venue_id)
