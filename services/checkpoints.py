"""Checkpoints and passings: an officer logs a person or a vehicle going into or out of
the zone the checkpoint guards, and sees the permit result at once; a traveller may
register a passing with a phone number only. A passing into a zone that was restricted
(a quarantine zone, in the version in force at the passing's time) without a valid permit
is flagged, and so is any passing, either way, on a permit suspended by the health
registry (its holder should be in isolation)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from services.audit import record
from services.db import fetch_all, fetch_one, of_row, row_or, value_or
from services.permits import PermitCheck, PermitError, PermitResult, PermitService
from services.validation import InvalidInput, is_deep_link_payload, parse_coordinates, parse_plate

DIRECTIONS = ("in", "out")
ZONE_KINDS = ("district", "sector", "quarantine")
RESTRICTED_KINDS = frozenset({"quarantine"})


_BY = "SELECT * FROM checkpoints WHERE"
_CHECKPOINT_OF = (
    "SELECT c.* FROM checkpoint_officers a JOIN checkpoints c ON c.id = a.checkpoint_id"
    " WHERE a.tg_user_id = $1"
)
# A new checkpoint; no row when the name is taken.
_ADD = (
    "INSERT INTO checkpoints (name, latitude, longitude, zone_kind, zone_name,"
    " register, qr_token, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    " ON CONFLICT (name) DO NOTHING RETURNING *"
)
_OFFICER_ROLE = "SELECT role FROM officers WHERE tg_user_id = $1"


@dataclass(frozen=True)
class Checkpoint:
    id: int
    name: str
    latitude: float
    longitude: float
    zone_kind: str
    zone_name: str
    register: str
    qr_token: str


@dataclass(frozen=True)
class Passing:
    id: int
    checkpoint: Checkpoint
    direction: str
    at: datetime
    permit: PermitCheck | None
    zone_version: int | None  # the version of the guarded zone in force, if any
    restricted: bool
    flagged: bool


@dataclass(frozen=True)
class HourCount:
    checkpoint: str
    hour: datetime  # the hour's start, in the city's time zone
    direction: str
    passings: int
    flagged: int


_checkpoint = of_row(Checkpoint)


class CheckpointService:
    def __init__(self, pool: asyncpg.Pool, permits: PermitService) -> None:
        self.pool = pool
        self.permits = permits

    async def add(
        self,
        name: str,
        *,
        latitude: float,
        longitude: float,
        zone_kind: str,
        zone_name: str,
        register: str,
        actor: str,
    ) -> Checkpoint:
        name, zone_name = name.strip(), zone_name.strip()
        if not 1 <= len(name) <= 120:
            raise PermitError("checkpoint.bad_name")
        if zone_kind not in ZONE_KINDS or not zone_name:
            raise PermitError("checkpoint.bad_zone")
        if register not in ("city", "roadblock"):
            raise PermitError("checkpoint.bad_register")
        parse_coordinates(latitude, longitude)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await row_or(
                conn,
                _ADD,
                name,
                latitude,
                longitude,
                zone_kind,
                zone_name,
                register,
                "cp_" + secrets.token_urlsafe(12),
                actor,
                refusal=PermitError("checkpoint.name_taken"),
            )
            await record(conn, actor=actor, action="checkpoint.add", subject=name)
        return _checkpoint(row)

    async def all(self) -> list[Checkpoint]:
        return await fetch_all(self.pool, _checkpoint, "SELECT * FROM checkpoints ORDER BY name")

    async def by_name(self, name: str) -> Checkpoint | None:
        return await fetch_one(self.pool, _checkpoint, f"{_BY} name = $1", name.strip())

    async def by_id(self, checkpoint_id: int) -> Checkpoint | None:
        return await fetch_one(self.pool, _checkpoint, f"{_BY} id = $1", checkpoint_id)

    async def by_token(self, token: str) -> Checkpoint | None:
        if not is_deep_link_payload(token):
            return None
        return await fetch_one(self.pool, _checkpoint, f"{_BY} qr_token = $1", token)

    async def checkpoint_of(self, tg_user_id: int) -> Checkpoint | None:
        return await fetch_one(self.pool, _checkpoint, _CHECKPOINT_OF, tg_user_id)

    async def assign(self, tg_user_id: int, checkpoint_id: int, *, actor: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await value_or(
                conn, _OFFICER_ROLE, tg_user_id, refusal=PermitError("checkpoint.not_an_officer")
            )
            await conn.execute(
                "INSERT INTO checkpoint_officers (tg_user_id, checkpoint_id, assigned_by)"
                " VALUES ($1, $2, $3) ON CONFLICT (tg_user_id) DO UPDATE"
                " SET checkpoint_id = $2, assigned_by = $3, assigned_at = now()",
                tg_user_id,
                checkpoint_id,
                actor,
            )
            await record(
                conn,
                actor=actor,
                action="checkpoint.assign",
                subject=f"officer:{tg_user_id}",
                details={"checkpoint": checkpoint_id},
            )

    async def officers(self) -> list[tuple[int, str, str, str | None]]:
        """(Telegram id, name, role, checkpoint name or None) of every officer."""
        rows = await self.pool.fetch(
            "SELECT o.tg_user_id, o.full_name, o.role, c.name AS checkpoint FROM officers o"
            " LEFT JOIN checkpoint_officers a ON a.tg_user_id = o.tg_user_id"
            " LEFT JOIN checkpoints c ON c.id = a.checkpoint_id ORDER BY o.joined_at"
        )
        return [(r["tg_user_id"], r["full_name"], r["role"], r["checkpoint"]) for r in rows]

    async def _zone_in_force(
        self, conn: asyncpg.pool.PoolConnectionProxy, checkpoint: Checkpoint, at: datetime
    ) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT id, version, kind FROM zones WHERE kind = $1 AND name = $2"
            " AND tstzrange(valid_from, valid_until) @> $3::timestamptz",
            checkpoint.zone_kind,
            checkpoint.zone_name,
            at,
        )

    async def log_passing(
        self,
        checkpoint: Checkpoint,
        *,
        officer: int,
        direction: str,
        value: str,
        at: datetime,
        update_key: str,
    ) -> Passing:
        """Check the permit (audited) and store the passing, judged against the version
        of the guarded zone in force at ``at``. InvalidInput for a malformed IIN or plate;
        the same update twice stores one passing."""
        if direction not in DIRECTIONS:
            raise PermitError("checkpoint.bad_direction")
        raw = value.strip()
        compact = raw.replace(" ", "")
        actor = f"officer:{officer}"
        iin = plate = None
        if compact.isdigit():
            check = await self.permits.check_iin(
                compact, at=at, actor=actor, register=checkpoint.register
            )
            iin = compact
        else:
            check = await self.permits.check_plate(
                raw, at=at, actor=actor, register=checkpoint.register
            )
            try:
                plate = parse_plate(raw).value
            except InvalidInput:
                plate = check.matched_plate or compact.upper()[:20]
        person: dict[str, object] = {"iin": iin, "plate": plate, "officer": officer}
        return await self._store(checkpoint, direction, at, update_key, check, person)

    async def self_register(
        self, checkpoint: Checkpoint, *, phone: str, direction: str, at: datetime, update_key: str
    ) -> Passing:
        """A traveller's own registration: the phone and the time, nothing else."""
        if direction not in DIRECTIONS:
            raise PermitError("checkpoint.bad_direction")
        return await self._store(checkpoint, direction, at, update_key, None, {"phone": phone})

    async def _store(
        self,
        checkpoint: Checkpoint,
        direction: str,
        at: datetime,
        update_key: str,
        permit: PermitCheck | None,
        person: dict[str, object],
    ) -> Passing:
        """Store one passing, judged against the guarded zone's version in force at
        ``at``; an update seen before returns the passing it stored then."""
        async with self.pool.acquire() as conn, conn.transaction():
            zone = await self._zone_in_force(conn, checkpoint, at)
            restricted = zone is not None and zone["kind"] in RESTRICTED_KINDS
            flagged = permit is not None and (
                permit.result is PermitResult.SUSPENDED
                or (direction == "in" and restricted and permit.result is not PermitResult.VALID)
            )
            row = await conn.fetchrow(
                "INSERT INTO passings (checkpoint_id, direction, at, iin, plate, officer, phone,"
                " permit_result, loose_match, zone_id, restricted, flagged, update_key)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                " ON CONFLICT (update_key) DO NOTHING RETURNING id",
                checkpoint.id,
                direction,
                at,
                person.get("iin"),
                person.get("plate"),
                person.get("officer"),
                person.get("phone"),
                permit.result.value if permit else None,
                bool(permit and permit.loose),
                zone["id"] if zone else None,
                restricted,
                flagged,
                update_key,
            )
            passing_id = (
                row["id"]
                if row
                else await conn.fetchval(
                    "SELECT id FROM passings WHERE update_key = $1", update_key
                )
            )
        return Passing(
            id=passing_id,
            checkpoint=checkpoint,
            direction=direction,
            at=at,
            permit=permit,
            zone_version=zone["version"] if zone else None,
            restricted=restricted,
            flagged=flagged,
        )

    async def hourly_counts(
        self, *, since: datetime, until: datetime, tz: ZoneInfo
    ) -> list[HourCount]:
        """Passings per checkpoint, hour (city time) and direction, with the flagged."""
        rows = await self.pool.fetch(
            "SELECT c.name, date_trunc('hour', p.at AT TIME ZONE $3) AS hour, p.direction,"
            " count(*) AS passings, count(*) FILTER (WHERE p.flagged) AS flagged"
            " FROM passings p JOIN checkpoints c ON c.id = p.checkpoint_id"
            " WHERE p.at >= $1 AND p.at < $2 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            since,
            until,
            str(tz),
        )
        return [
            HourCount(
                r["name"],
                r["hour"].replace(tzinfo=tz),
                r["direction"],
                r["passings"],
                r["flagged"],
            )
            for r in rows
        ]

    async def recent(
        self, *, limit: int = 100, flagged_only: bool = False
    ) -> list[asyncpg.Record]:
        return list(
            await self.pool.fetch(
                "SELECT p.id, c.name AS checkpoint, p.direction, p.at, p.iin, p.plate,"
                " p.phone IS NOT NULL AS self_registered, p.permit_result, p.loose_match,"
                " p.restricted, p.flagged FROM passings p"
                " JOIN checkpoints c ON c.id = p.checkpoint_id"
                " WHERE NOT $2 OR p.flagged ORDER BY p.at DESC, p.id DESC LIMIT $1",
                limit,
                flagged_only,
            )
        )
