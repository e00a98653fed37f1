"""Movement permits: what a police or checkpoint officer (or the holder) learns when
checking a person by IIN or a vehicle by plate. Every check by an officer is audited.

A permit in force whose named person (its IIN; for a driver with a car, the driver) is
red or yellow now is suspended: not valid while the status lasts, valid again by itself
when it lifts. It is judged at each check from the status service, never stored, and the
answer says "suspended", never the colour."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import asyncpg

from services.audit import record
from services.errors import Refusal
from services.invites import create_invite, use_invite
from services.status import Colour, StatusService
from services.validation import InvalidInput, check_iin, parse_plate, plate_corrections


class PermitResult(StrEnum):
    VALID = "valid"
    SUSPENDED = "suspended"  # in force, but its holder is red or yellow now
    NOT_YET = "not_yet"
    PENDING = "pending"
    EXPIRED = "expired"
    REVOKED = "revoked"
    REJECTED = "rejected"
    NONE = "none"


@dataclass(frozen=True)
class PermitCheck:
    result: PermitResult
    register: str | None = None
    organisation: str | None = None
    purpose: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    loose: bool = False
    """The plate was found only by its skeleton (typed with look-alike characters)."""
    matched_plate: str | None = None


_COLUMNS = (
    "p.register, p.iin, p.state, p.purpose, p.valid_from, p.valid_until, p.plate, "
    "o.name AS organisation, o.permitted AS organisation_allowed"
)

# The permits in force now, if any (found directly: weeks of permits issued ahead must not
# hide them; more than one, as a suspended one must not hide another), then the latest
# others, to say why there is none.
_IN_FORCE = f"""
SELECT {_COLUMNS} FROM permits p JOIN permit_organisations o ON o.bin = p.bin
 WHERE p.{{column}} = ANY($1::text[]) AND p.state = 'approved' AND o.permitted
   AND p.valid_from <= $2 AND p.valid_until > $2
   AND ($3::text IS NULL OR p.register = $3)
 ORDER BY p.valid_until DESC LIMIT 20
"""  # noqa: S608 - fixed column list
_LATEST = f"""
SELECT {_COLUMNS} FROM permits p JOIN permit_organisations o ON o.bin = p.bin
 WHERE p.{{column}} = ANY($1::text[]) AND ($2::text IS NULL OR p.register = $2)
 ORDER BY p.valid_until DESC LIMIT 20
"""  # noqa: S608
_QUERIES = {
    column: (_IN_FORCE.format(column=column), _LATEST.format(column=column))
    for column in ("iin", "plate")
}

# When there is no permit in force, the one that explains most about now is shown.
_RANK = {
    PermitResult.VALID: 0,
    PermitResult.SUSPENDED: 1,
    PermitResult.NOT_YET: 2,
    PermitResult.PENDING: 3,
    PermitResult.REVOKED: 4,
    PermitResult.EXPIRED: 5,
    PermitResult.REJECTED: 6,
}

HOLDS_PERMITS_BACK = frozenset({Colour.RED, Colour.YELLOW})


def judge(row: asyncpg.Record, at: datetime, suspended: Collection[str] = ()) -> PermitResult:
    """What a permit row amounts to at ``at`` (its organisation's standing included);
    a permit in force whose holder is among ``suspended`` is suspended."""
    result = _judge_state(row, at)
    if result is PermitResult.VALID and row["iin"] in suspended:
        return PermitResult.SUSPENDED
    return result


def _judge_state(row: asyncpg.Record, at: datetime) -> PermitResult:
    state = row["state"]
    if state == "rejected":
        return PermitResult.REJECTED
    if state == "revoked" or (state == "approved" and not row["organisation_allowed"]):
        return PermitResult.REVOKED  # withdrawn, or its organisation no longer allowed
    if row["valid_until"] <= at:
        return PermitResult.EXPIRED  # an approved permit, or an application, past its window
    if state == "pending":
        return PermitResult.PENDING
    return PermitResult.VALID if row["valid_from"] <= at else PermitResult.NOT_YET


async def suspended_holders(
    statuses: StatusService, rows: Iterable[asyncpg.Record], at: datetime
) -> set[str]:
    """The holders of these permits whose permits in force are suspended: those red or
    yellow now (only the holders of permits otherwise valid at ``at`` are looked up)."""
    holders = {r["iin"] for r in rows if r["iin"] and _judge_state(r, at) is PermitResult.VALID}
    if not holders:
        return set()
    found = await statuses.statuses(holders)
    return {iin for iin, status in found.items() if status.colour in HOLDS_PERMITS_BACK}


def best_permit(
    rows: Sequence[asyncpg.Record],
    at: datetime,
    *,
    loose: bool = False,
    suspended: Collection[str] = (),
) -> PermitCheck:
    if not rows:
        return PermitCheck(PermitResult.NONE)
    judged = sorted(((judge(r, at, suspended), r) for r in rows), key=lambda pair: _RANK[pair[0]])
    result, row = judged[0]
    return PermitCheck(
        result,
        row["register"],
        row["organisation"],
        row["purpose"],
        row["valid_from"],
        row["valid_until"],
        loose,
        row["plate"],
    )


OFFICER_ROLES = ("police", "checkpoint", "agent")  # agents: the hotline's staff
# The bot each officer role works in: an invite is opened there and nowhere else.
OFFICER_BOT = {"police": "staff", "checkpoint": "staff", "agent": "agent"}
# The bot an invite belongs in -> the text that sends its holder there.
_OTHER_BOT = {"staff": "permit.invite_other_bot.staff", "agent": "permit.invite_other_bot.agent"}
OFFICER_INVITE_TTL = timedelta(days=7)


class PermitError(Refusal):
    """A refusal with the text key that explains it."""


class PermitService:
    def __init__(self, pool: asyncpg.Pool, statuses: StatusService) -> None:
        self.pool = pool
        self.statuses = statuses

    async def create_officer_invite(
        self, role: str, *, created_by: str, checkpoint_id: int | None = None
    ) -> str:
        """A one-use invite; with a checkpoint, joining also assigns the officer to it."""
        if role not in OFFICER_ROLES:
            raise PermitError("permit.role_unknown")
        grants = {"role": role, "created_by": created_by, "checkpoint_id": checkpoint_id}
        async with self.pool.acquire() as conn, conn.transaction():
            token = await create_invite(
                conn, "officer_invites", "off_", OFFICER_INVITE_TTL, grants
            )
            await record(
                conn,
                actor=created_by,
                action="officer.invite",
                details={"role": role, "checkpoint": checkpoint_id},
            )
        return token

    async def join_as_officer(self, token: str, tg_user_id: int, name: str, *, bot: str) -> str:
        """Become an officer by an admin's invite (each works once), opened in ``bot``;
        returns the role. An invite for a role of another bot is refused and kept, the
        refusal naming the right bot."""
        async with self.pool.acquire() as conn, conn.transaction():
            roles = [role for role, its_bot in OFFICER_BOT.items() if its_bot == bot]
            invite = await use_invite(
                conn,
                "officer_invites",
                token,
                tg_user_id,
                "role, checkpoint_id",
                also="role = ANY($3::text[])",
                args=(roles,),
            )
            if invite is None:
                other: str | None = await conn.fetchval(
                    "SELECT role FROM officer_invites WHERE token = $1"
                    " AND used_by IS NULL AND expires_at > now()",
                    token,
                )
                if other is not None:
                    raise PermitError(_OTHER_BOT[OFFICER_BOT[other]])
                raise PermitError("permit.invite_invalid")
            role: str = invite["role"]
            await conn.execute(
                "INSERT INTO officers (tg_user_id, role, full_name) VALUES ($1, $2, $3) "
                "ON CONFLICT (tg_user_id) DO UPDATE SET role = EXCLUDED.role",
                tg_user_id,
                role,
                name[:100],
            )
            if invite["checkpoint_id"] is not None:
                await conn.execute(
                    "INSERT INTO checkpoint_officers (tg_user_id, checkpoint_id, assigned_by)"
                    " VALUES ($1, $2, 'invite') ON CONFLICT (tg_user_id) DO UPDATE"
                    " SET checkpoint_id = $2, assigned_by = 'invite', assigned_at = now()",
                    tg_user_id,
                    invite["checkpoint_id"],
                )
            await record(conn, actor=f"tg:{tg_user_id}", action="officer.join")
        return role

    async def officer_role(self, tg_user_id: int) -> str | None:
        role: str | None = await self.pool.fetchval(
            "SELECT role FROM officers WHERE tg_user_id = $1 AND role IN ('police', 'checkpoint')",
            tg_user_id,
        )
        return role

    async def _lookup(
        self, column: str, values: list[str], at: datetime, register: str | None, *, loose: bool
    ) -> PermitCheck:
        """The best permit for these values; the holders' statuses are looked up with no
        connection held (the status service takes its own)."""
        in_force, latest = _QUERIES[column]
        async with self.pool.acquire() as conn:
            rows = list(await conn.fetch(in_force, values, at, register))
            if not rows:
                rows = list(await conn.fetch(latest, values, register))
        suspended = await suspended_holders(self.statuses, rows, at)
        return best_permit(rows, at, loose=loose and bool(rows), suspended=suspended)

    async def check_iin(
        self, raw: str, *, at: datetime, actor: str, register: str | None = None
    ) -> PermitCheck:
        """The permit situation of a person (in one register, or any), suspended while
        they are red or yellow; InvalidInput for a malformed IIN."""
        iin = check_iin(raw)
        check = await self._lookup("iin", [iin], at, register, loose=False)
        await record(
            self.pool,
            actor=actor,
            action="permits.check",
            subject=f"iin:{iin}",
            details={"result": check.result.value, "register": register},
        )
        return check

    async def check_plate(
        self, raw: str, *, at: datetime, actor: str, register: str | None = None
    ) -> PermitCheck:
        """The permit situation of a vehicle. A plate that reads as one is looked up as it
        is; one that does not (a typo: O for 0, I for 1, a one-digit region) is looked up
        as the plates it is probably a typo of, and the answer says the match was loose.
        A permit naming a driver with the car is suspended while the driver is red or
        yellow; one for the vehicle alone names nobody, so nobody's status touches it."""
        try:
            plates, loose = [parse_plate(raw).value], False
        except InvalidInput as error:
            plates, loose = plate_corrections(raw), True
            if not plates:
                raise error from None
        check = await self._lookup("plate", plates, at, register, loose=loose)
        await record(
            self.pool,
            actor=actor,
            action="permits.check",
            subject=f"plate:{plates[0] if len(plates) == 1 else raw[:20]}",
            details={"result": check.result.value, "loose": check.loose, "register": register},
        )
        return check
