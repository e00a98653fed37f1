"""Applying for movement permits, and their review by permits officers.

An organisation's head proves who they are by the organisation's BIN and the head's
phone number on the tax register, shared from their own Telegram account
(services/organisations.py; it stands in for the digital signature of the original
portal). Then they apply for people (IIN) and
vehicles (plate), one purpose, one register and one validity window. Each item is
checked at once:

- the organisation may hold permits (register flag and allowed activity) - else the
  whole application is refused;
- the IIN and plate are well formed - else the line is refused before anything is stored;
- a person with a red or yellow status cannot be given a permit - rejected;
- a person or vehicle that already has an approved or waiting permit overlapping the
  window in the same register is a duplicate - rejected;
- beyond the organisation's quota of permits in force - waits for an officer.

An item that passes every rule is approved automatically; one that waits carries the
rules it failed, for the officer. A person who turns red or yellow later keeps the
permit, suspended while the status lasts (see services/permits.py); the head's list shows
it as suspended, never the colour.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from redis.asyncio import Redis

from services.audit import record
from services.db import from_row, row_or
from services.organisations import NotHead, prove_head
from services.permits import PermitError, PermitResult, judge, suspended_holders
from services.status import Colour, StatusService
from services.validation import InvalidInput, check_iin, parse_bin, parse_plate

PURPOSES = ("work", "delivery", "medical", "utilities", "security", "volunteer")
REGISTERS = ("city", "roadblock")
MAX_WINDOW_DAYS = 30
MAX_DAYS_AHEAD = 366
MAX_ITEMS = 5_000


@dataclass(frozen=True)
class Item:
    """One line of an application: a person, a vehicle, or a driver with their car."""

    line: int
    iin: str | None
    plate: str | None


@dataclass(frozen=True)
class BadLine:
    line: int
    code: str  # an ``errors.<code>`` catalogue key


@dataclass(frozen=True)
class Organisation:
    bin: str
    name: str
    activity_code: str
    permitted: bool
    quota: int


@dataclass
class Outcome:
    application_id: int
    approved: list[Item] = field(default_factory=list)
    waiting: list[tuple[Item, list[str]]] = field(default_factory=list)
    rejected: list[tuple[Item, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PermitRow:
    id: int
    register: str
    iin: str | None
    plate: str | None
    purpose: str
    valid_from: datetime
    valid_until: datetime
    state: PermitResult
    reason: str | None
    failed_rules: list[str]
    organisation: str
    bin: str
    created_at: datetime


def _item(line: int, fields: list[str]) -> Item:
    """``IIN``, ``plate`` or both, in either order."""
    iin = plate = None
    for raw in (f.strip() for f in fields):
        if not raw:
            continue
        compact = raw.replace(" ", "")
        if compact.isdigit():
            if iin is not None:
                raise InvalidInput("apply.line_two_iins")
            iin = check_iin(compact)
        else:
            if plate is not None:
                raise InvalidInput("apply.line_two_plates")
            plate = parse_plate(raw).value
    if iin is None and plate is None:
        raise InvalidInput("apply.line_empty")
    return Item(line, iin, plate)


def parse_lines(lines: Iterable[str]) -> tuple[list[Item], list[BadLine]]:
    """Typed lines: an IIN, a plate, or ``IIN, plate`` (comma, semicolon or tab)."""
    items: list[Item] = []
    bad: list[BadLine] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(items) + len(bad) >= MAX_ITEMS:
            bad.append(BadLine(number, "apply.too_many_lines"))
            break
        fields = line.replace(";", ",").replace("\t", ",").split(",")
        try:
            items.append(_item(number, fields))
        except InvalidInput as error:
            bad.append(BadLine(number, error.code))
    return items, bad


def parse_csv(data: bytes) -> tuple[list[Item], list[BadLine]]:
    """A CSV file of employees: columns ``iin`` and/or ``plate`` (a header is needed;
    UTF-8 or Windows-1251; comma or semicolon)."""
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        content = data.decode("cp1251", errors="replace")
    sample = content[:2048]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(content), delimiter=delimiter, strict=True)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except (StopIteration, csv.Error):
        return [], [BadLine(1, "apply.csv_header")]
    columns = [header.index(name) if name in header else -1 for name in ("iin", "plate")]
    if columns == [-1, -1]:
        return [], [BadLine(1, "apply.csv_header")]
    items: list[Item] = []
    bad: list[BadLine] = []
    try:
        for number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(items) + len(bad) >= MAX_ITEMS:
                bad.append(BadLine(number, "apply.too_many_lines"))
                break
            fields = [row[c] if 0 <= c < len(row) else "" for c in columns]
            if any(len(f) > 64 for f in fields):
                bad.append(BadLine(number, "apply.line_too_long"))
                continue
            try:
                items.append(_item(number, fields))
            except InvalidInput as error:
                bad.append(BadLine(number, error.code))
    except csv.Error:
        bad.append(BadLine(reader.line_num, "apply.csv_broken"))
    return items, bad


def window_of(first: date, last: date, *, today: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """From the start of ``first`` to the end of ``last``, in the city's time zone; a
    window in the past, backwards, longer than MAX_WINDOW_DAYS or starting more than
    MAX_DAYS_AHEAD days ahead is refused."""
    if first < today:
        raise InvalidInput("apply.window_past")
    if last < first:
        raise InvalidInput("apply.window_backwards")
    if (last - first).days + 1 > MAX_WINDOW_DAYS:
        raise InvalidInput("apply.window_too_long")
    if (first - today).days > MAX_DAYS_AHEAD:  # 31.12.9999 would overflow below
        raise InvalidInput("apply.window_far")
    start = datetime.combine(first, time(0), tzinfo=tz)
    return start, datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)


def _permit_row(row: asyncpg.Record, at: datetime, suspended: set[str]) -> PermitRow:
    return from_row(
        PermitRow, row, state=judge(row, at, suspended), failed_rules=list(row["failed_rules"])
    )


_PERMIT_COLUMNS = (
    "p.id, p.register, p.iin, p.plate, p.purpose, p.valid_from, p.valid_until, p.state,"
    " p.reason, p.failed_rules, p.bin, p.created_at, o.name AS organisation,"
    " o.permitted AS organisation_allowed"
)
_PERMIT_LOCKED = "SELECT state, iin FROM permits WHERE id = $1 FOR UPDATE"


class PermitApplications:
    def __init__(self, pool: asyncpg.Pool, redis: Redis, statuses: StatusService) -> None:
        self.pool = pool
        self.redis = redis
        self.statuses = statuses

    async def _permit_rows(self, rows: list[asyncpg.Record], at: datetime) -> list[PermitRow]:
        """The rows as shown, those of red or yellow holders suspended."""
        suspended = await suspended_holders(self.statuses, rows, at)
        return [_permit_row(r, at, suspended) for r in rows]

    async def organisation(self, bin_: str) -> Organisation | None:
        row = await self.pool.fetchrow(
            "SELECT bin, name, activity_code, permitted, permit_quota"
            " FROM permit_organisations WHERE bin = $1",
            bin_,
        )
        if row is None:
            return None
        return Organisation(
            row["bin"], row["name"], row["activity_code"], row["permitted"], row["permit_quota"]
        )

    async def head_of(self, tg_user_id: int) -> Organisation | None:
        bin_ = await self.pool.fetchval(
            "SELECT bin FROM org_heads WHERE tg_user_id = $1", tg_user_id
        )
        return await self.organisation(bin_) if bin_ else None

    async def verify_head(self, tg_user_id: int, raw_bin: str, phone: str) -> Organisation:
        """Link the account to the organisation whose head's phone it shared
        (services/organisations.py: the same refusal for an unknown BIN and a wrong phone;
        five tries an hour)."""
        bin_ = parse_bin(raw_bin).value
        try:
            await prove_head(
                self.pool,
                self.redis,
                tg_user_id=tg_user_id,
                bin_=bin_,
                phone=phone,
                purpose="permits",
            )
        except NotHead as error:
            raise PermitError(
                "apply.too_many_attempts"
                if error.code == "too_many_attempts"
                else "apply.not_head"
            ) from None
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO org_heads (tg_user_id, bin) VALUES ($1, $2)"
                " ON CONFLICT (tg_user_id) DO UPDATE SET bin = $2, verified_at = now()",
                tg_user_id,
                bin_,
            )
            await record(
                conn,
                actor=f"tg:{tg_user_id}",
                action="permits.head_verified",
                subject=f"bin:{bin_}",
            )
        organisation = await self.organisation(bin_)
        assert organisation is not None
        return organisation

    async def submit(
        self,
        *,
        bin_: str,
        applicant: str,
        register: str,
        purpose: str,
        valid_from: datetime,
        valid_until: datetime,
        items: list[Item],
        source: str,
        now: datetime,
    ) -> Outcome:
        """One application in one transaction (the organisation's row locked, so two
        applications at once cannot both use the last of the quota)."""
        if register not in REGISTERS or purpose not in PURPOSES:
            raise PermitError("apply.bad_choice")
        if not items:
            raise PermitError("apply.nothing_to_apply_for")
        statuses = {
            item.iin: await self.statuses.status(item.iin, now=now) for item in items if item.iin
        }
        async with self.pool.acquire() as conn, conn.transaction():
            organisation = await conn.fetchrow(
                "SELECT o.permit_quota, p.permitted FROM organisations o"
                " JOIN permit_organisations p ON p.bin = o.bin WHERE o.bin = $1 FOR UPDATE OF o",
                bin_,
            )
            if organisation is None or not organisation["permitted"]:
                raise PermitError("apply.org_not_allowed")
            in_force = await conn.fetchval(
                "SELECT count(*) FROM permits WHERE bin = $1"
                " AND state IN ('approved', 'pending') AND valid_until > $2",
                bin_,
                now,
            )
            application_id = await conn.fetchval(
                "INSERT INTO permit_applications"
                " (bin, applicant, register, purpose, valid_from, valid_until, source)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                bin_,
                applicant,
                register,
                purpose,
                valid_from,
                valid_until,
                source,
            )
            outcome = Outcome(application_id)
            seen: set[str] = set()
            rows: list[tuple[Any, ...]] = []
            for item in items:
                keys = {f"iin:{item.iin}", f"plate:{item.plate}"} - {"iin:None", "plate:None"}
                if any(k in seen for k in keys) or await self._overlaps(
                    conn, item, register, valid_from, valid_until
                ):
                    outcome.rejected.append((item, "duplicate"))
                    rows.append((item, "rejected", "duplicate", []))
                    continue
                seen.update(keys)
                status = statuses.get(item.iin) if item.iin else None
                if status is not None and status.colour in (Colour.RED, Colour.YELLOW):
                    outcome.rejected.append((item, "quarantine"))
                    rows.append((item, "rejected", "quarantine", []))
                    continue
                failed = []
                if in_force >= organisation["permit_quota"]:
                    failed.append("quota")
                in_force += 1
                if failed:
                    outcome.waiting.append((item, failed))
                    rows.append((item, "pending", None, failed))
                else:
                    outcome.approved.append(item)
                    rows.append((item, "approved", None, []))
            await conn.executemany(
                "INSERT INTO permits (register, bin, iin, plate, purpose, valid_from, valid_until,"
                " state, reason, failed_rules, application_id, decided_by, decided_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
                " CASE WHEN $8 = 'pending' THEN NULL ELSE 'auto' END,"
                " CASE WHEN $8 = 'pending' THEN NULL ELSE now() END)",
                [
                    (
                        register,
                        bin_,
                        item.iin,
                        item.plate,
                        purpose,
                        valid_from,
                        valid_until,
                        state,
                        reason,
                        failed,
                        application_id,
                    )
                    for item, state, reason, failed in rows
                ],
            )
            await record(
                conn,
                actor=applicant,
                action="permits.apply",
                subject=f"application:{application_id}",
                details={
                    "bin": bin_,
                    "approved": len(outcome.approved),
                    "waiting": len(outcome.waiting),
                    "rejected": len(outcome.rejected),
                    "source": source,
                },
            )
        return outcome

    @staticmethod
    async def _overlaps(
        conn: asyncpg.pool.PoolConnectionProxy,
        item: Item,
        register: str,
        valid_from: datetime,
        valid_until: datetime,
    ) -> bool:
        found = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM permits WHERE register = $1"
            " AND state IN ('approved', 'pending') AND valid_from < $3 AND valid_until > $2"
            " AND ((iin IS NOT NULL AND iin = $4) OR (plate IS NOT NULL AND plate = $5)))",
            register,
            valid_from,
            valid_until,
            item.iin,
            item.plate,
        )
        return bool(found)

    async def permits_of(self, bin_: str, *, now: datetime, limit: int = 30) -> list[PermitRow]:
        """The organisation's latest permits, as its head sees them ("Our permits")."""
        rows = await self.pool.fetch(
            f"SELECT {_PERMIT_COLUMNS} FROM permits p"  # noqa: S608 - fixed columns
            " JOIN permit_organisations o ON o.bin = p.bin"
            " WHERE p.bin = $1 ORDER BY p.created_at DESC, p.id DESC LIMIT $2",
            bin_,
            limit,
        )
        return await self._permit_rows(list(rows), now)

    async def waiting(self, *, now: datetime, limit: int = 100) -> list[PermitRow]:
        rows = await self.pool.fetch(
            f"SELECT {_PERMIT_COLUMNS} FROM permits p"  # noqa: S608
            " JOIN permit_organisations o ON o.bin = p.bin"
            " WHERE p.state = 'pending' AND p.valid_until > $1"
            " ORDER BY p.created_at, p.id LIMIT $2",
            now,
            limit,
        )
        return await self._permit_rows(list(rows), now)

    async def search(self, query: str, *, now: datetime, limit: int = 100) -> list[PermitRow]:
        """By BIN, IIN or plate (as typed; a plate is read as a plate)."""
        value = query.strip()
        column = "p.iin"
        compact = value.replace(" ", "")
        if compact.isdigit() and len(compact) == 12:
            is_bin = await self.pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM organisations WHERE bin = $1)", compact
            )
            column, value = ("p.bin" if is_bin else "p.iin"), compact
        else:
            column, value = "p.plate", parse_plate(value).value
        rows = await self.pool.fetch(
            f"SELECT {_PERMIT_COLUMNS} FROM permits p"  # noqa: S608 - column from a fixed set
            f" JOIN permit_organisations o ON o.bin = p.bin WHERE {column} = $1"
            " ORDER BY p.created_at DESC, p.id DESC LIMIT $2",
            value,
            limit,
        )
        return await self._permit_rows(list(rows), now)

    async def decide(self, permit_id: int, *, approve: bool, officer: str, reason: str) -> None:
        """An officer approves or rejects a waiting permit (a reason is needed to
        reject), or revokes an approved one (``approve=False`` on an approved permit)."""
        reason = reason.strip()[:300]
        async with self.pool.acquire() as conn, conn.transaction():
            permit = await row_or(
                conn, _PERMIT_LOCKED, permit_id, refusal=PermitError("apply.no_such_permit")
            )
            state = permit["state"]
            if approve and permit["iin"] is not None:
                status = await self.statuses.status(permit["iin"])
                if status.colour in (Colour.RED, Colour.YELLOW):  # turned red since applying
                    raise PermitError("apply.quarantine_now")
            if approve and state != "pending":
                raise PermitError("apply.not_waiting")
            if not approve and state not in ("pending", "approved"):
                raise PermitError("apply.not_waiting")
            if not approve and not reason:
                raise PermitError("apply.reason_needed")
            new_state = (
                "approved" if approve else ("rejected" if state == "pending" else "revoked")
            )
            await conn.execute(
                "UPDATE permits SET state = $2, reason = NULLIF($3, ''), decided_by = $4,"
                " decided_at = now() WHERE id = $1",
                permit_id,
                new_state,
                reason,
                officer,
            )
            await record(
                conn,
                actor=officer,
                action=f"permits.{new_state}",
                subject=f"permit:{permit_id}",
                details={"reason": reason} if reason else None,
            )

    async def allowed_activities(self) -> list[tuple[str, str]]:
        rows = await self.pool.fetch("SELECT code, note FROM allowed_activities ORDER BY code")
        return [(r["code"], r["note"]) for r in rows]

    async def set_activity(self, code: str, allowed: bool, *, note: str, actor: str) -> None:
        code = code.strip()
        if not code or len(code) > 20 or not all(c.isdigit() or c == "." for c in code):
            raise PermitError("apply.bad_activity_code")
        async with self.pool.acquire() as conn, conn.transaction():
            if allowed:
                await conn.execute(
                    "INSERT INTO allowed_activities (code, note, changed_by) VALUES ($1, $2, $3)"
                    " ON CONFLICT (code) DO UPDATE SET note = $2, changed_by = $3,"
                    " changed_at = now()",
                    code,
                    note.strip()[:200],
                    actor,
                )
            else:
                await conn.execute("DELETE FROM allowed_activities WHERE code = $1", code)
            await record(
                conn,
                actor=actor,
                action="permits.activity_allowed" if allowed else "permits.activity_removed",
                subject=code,
            )
