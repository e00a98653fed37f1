"""Doctors and their patients' cases: invites, enrolment, the patient's consent, phone
and home point, and closing the cases whose isolation is over."""

from __future__ import annotations

import secrets
from datetime import date, datetime

import asyncpg

from services.audit import record
from services.db import Connection, fetch_one
from services.invites import create_invite, use_invite
from services.outbox import Queued, enqueue, enqueue_many
from services.quarantine.index import QuarantineIndex
from services.quarantine.model import (
    DOCTOR_INVITE_TTL,
    Case,
    Doctor,
    QuarantineError,
    Row,
    new_code,
)
from services.quarantine.rows import CASE_COLUMNS, CASE_FROM, case_of_row
from services.validation import Coordinates

_DOCTOR = "SELECT id, tg_user_id, district, on_duty FROM doctors WHERE tg_user_id = $1"
_CASE = f"SELECT {CASE_COLUMNS} {CASE_FROM} WHERE c.id = $1"
_CASE_OF_PATIENT = (
    f"SELECT {CASE_COLUMNS} {CASE_FROM} WHERE c.patient_tg_user_id = $1 AND c.closed_at IS NULL"
)
_JOIN_DOCTOR = (
    "INSERT INTO doctors (tg_user_id, full_name, district, on_duty, joined_at) "
    "VALUES ($1, $2, $3, $4, now()) ON CONFLICT (tg_user_id) DO UPDATE "
    "SET district = EXCLUDED.district, on_duty = EXCLUDED.on_duty "
    "RETURNING id, tg_user_id, district, on_duty"
)

_ENROL = (
    "INSERT INTO quarantine_cases (code, doctor_id, district, iin, "
    "isolation_end, invite_token, home_lat, home_lon, home_source, "
    "home_confirmed_at, zone_state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
    "CASE WHEN $7::float8 IS NULL THEN NULL ELSE 'doctor' END, "
    "CASE WHEN $7::float8 IS NULL THEN NULL ELSE now() END, 'unknown') "
    "RETURNING id"
)

_CONSENT = (
    "UPDATE quarantine_cases SET patient_tg_user_id = $2, "
    "consented_at = coalesce(consented_at, now()), declined_at = NULL "
    "WHERE invite_token = $1 AND closed_at IS NULL "
    "AND (patient_tg_user_id IS NULL OR patient_tg_user_id = $2) "
    "RETURNING id, consented_at"
)

_DECLINE = (
    "UPDATE quarantine_cases c SET declined_at = now() FROM doctors d "
    "WHERE c.invite_token = $1 AND c.closed_at IS NULL AND c.consented_at IS NULL "
    "AND d.id = c.doctor_id RETURNING c.id, c.code, d.tg_user_id"
)

_SET_PHONE = (
    "UPDATE quarantine_cases SET phone = $2 WHERE patient_tg_user_id = $1 AND closed_at IS NULL"
)

_CONFIRM_HOME = (
    "UPDATE quarantine_cases SET home_confirmed_at = now(), zone_state = 'home', "
    "outside_streak = 0, inside_streak = 0 "
    "WHERE patient_tg_user_id = $1 AND closed_at IS NULL "
    "AND home_lat IS NOT NULL AND home_confirmed_at IS NULL RETURNING id"
)

_REJECT_HOME = (
    "UPDATE quarantine_cases SET home_lat = NULL, home_lon = NULL, home_source = NULL, "
    "home_rejected_at = now() WHERE patient_tg_user_id = $1 AND closed_at IS NULL "
    "AND home_confirmed_at IS NULL"
)

_HOME_HERE = (
    "UPDATE quarantine_cases SET home_lat = last_lat, home_lon = last_lon, "
    "home_source = 'patient', home_confirmed_at = now(), zone_state = 'home', "
    "outside_streak = 0, inside_streak = 0 "
    "WHERE patient_tg_user_id = $1 AND closed_at IS NULL "
    "AND home_confirmed_at IS NULL AND last_lat IS NOT NULL "
    "AND last_judged_at > $2::timestamptz - interval '5 minutes' RETURNING id"
)

_CLOSE_FINISHED = (
    "UPDATE quarantine_cases c SET closed_at = now(), close_reason = 'isolation_end', "
    "last_lat = NULL, last_lon = NULL, zone_episode_id = NULL, "
    "signal_episode_id = NULL FROM doctors d "
    "WHERE d.id = c.doctor_id AND c.id IN (SELECT id FROM quarantine_cases "
    "WHERE closed_at IS NULL AND isolation_end < $1 ORDER BY id FOR UPDATE) "
    "RETURNING c.id, c.code, c.patient_tg_user_id, d.tg_user_id AS doctor"
)

_CLOSE_EPISODES = (
    "UPDATE quarantine_episodes SET closed_at = now(), close_kind = 'case_closed' "
    "WHERE case_id = ANY($1::bigint[]) AND closed_at IS NULL"
)


class CaseService:
    def __init__(self, pool: asyncpg.Pool, index: QuarantineIndex) -> None:
        self.pool = pool
        self.index = index

    # ------------------------------------------------------------------ doctors

    async def create_doctor_invite(
        self, district: str, *, on_duty: bool = False, created_by: str
    ) -> str:
        district = district.strip()
        if not district:
            raise QuarantineError("doctor.district_required")
        grants = {"district": district, "on_duty": on_duty, "created_by": created_by}
        async with self.pool.acquire() as conn, conn.transaction():
            token = await create_invite(conn, "doctor_invites", "doc_", DOCTOR_INVITE_TTL, grants)
            await record(
                conn, actor=created_by, action="doctor.invite", details={"district": district}
            )
        return token

    async def join_as_doctor(self, token: str, tg_user_id: int, name: str) -> Doctor:
        """Become a doctor by an admin's invite: each works once, for a week."""
        async with self.pool.acquire() as conn, conn.transaction():
            invite = await use_invite(
                conn, "doctor_invites", token, tg_user_id, "district, on_duty"
            )
            if invite is None:
                raise QuarantineError("doctor.invite_invalid")
            row = await conn.fetchrow(
                _JOIN_DOCTOR, tg_user_id, name[:100], invite["district"], invite["on_duty"]
            )
            await record(conn, actor=f"tg:{tg_user_id}", action="doctor.join")
        assert row is not None
        return _doctor(row)

    async def doctor(self, tg_user_id: int) -> Doctor | None:
        return await fetch_one(self.pool, _doctor, _DOCTOR, tg_user_id)

    # -------------------------------------------------------------- enrolment

    async def enrol(
        self,
        doctor_tg_user_id: int,
        *,
        isolation_end: date,
        home: Coordinates | None = None,
        iin: str | None = None,
    ) -> Case:
        """A doctor puts a patient under home quarantine: a case code and a one-use invite."""
        doctor = await self.doctor(doctor_tg_user_id)
        if doctor is None:
            raise QuarantineError("doctor.not_a_doctor")
        for _ in range(10):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    case_id = await conn.fetchval(
                        _ENROL,
                        new_code(),
                        doctor.id,
                        doctor.district,
                        iin,
                        isolation_end,
                        "q_" + secrets.token_urlsafe(12),
                        home.latitude if home else None,
                        home.longitude if home else None,
                    )
                    await _audit(conn, doctor_tg_user_id, "quarantine.enrol", case_id)
                break
            except asyncpg.UniqueViolationError:  # a code already taken: draw again
                continue
        else:
            raise RuntimeError("could not draw a free case code")
        return await self._existing(case_id)

    async def _case_after(self, row: Row | None, refusal: str) -> Case:
        """The case a statement returned the id of, or the refusal when it returned none."""
        if row is None:
            raise QuarantineError(refusal)
        return await self._existing(row["id"])

    async def _existing(self, case_id: int) -> Case:
        """A case that was just written, so it exists."""
        case = await self.case(case_id)
        assert case is not None
        return case

    async def case(self, case_id: int) -> Case | None:
        return await fetch_one(self.pool, case_of_row, _CASE, case_id)

    async def case_by_invite(self, token: str) -> Case:
        row = await self.pool.fetchrow(
            f"SELECT {CASE_COLUMNS} {CASE_FROM} WHERE c.invite_token = $1", token
        )
        if row is None:
            raise QuarantineError("quarantine.invite_invalid")
        case = case_of_row(row)
        if case.closed:
            raise QuarantineError("quarantine.case_closed")
        return case

    async def case_of_patient(self, tg_user_id: int) -> Case | None:
        return await fetch_one(self.pool, case_of_row, _CASE_OF_PATIENT, tg_user_id)

    # ------------------------------------------------------------- the patient

    async def consent(self, token: str, tg_user_id: int) -> Case:
        """The patient agrees: the invite becomes theirs (and nobody else's)."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(_CONSENT, token, tg_user_id)
                if row is None:
                    raise QuarantineError("quarantine.invite_invalid")
                case_id, consented_at = row["id"], row["consented_at"]
                await _audit(conn, tg_user_id, "quarantine.consent", case_id)
        except asyncpg.UniqueViolationError:
            raise QuarantineError("quarantine.already_in_case") from None
        await self.index.watch_from(case_id, consented_at)
        return await self._existing(case_id)

    async def decline(self, token: str, tg_user_id: int) -> Case:
        """The patient does not agree; the doctor is told, nothing is tracked."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_DECLINE, token)
            if row is None:
                raise QuarantineError("quarantine.invite_invalid")
            await enqueue(
                conn,
                bot="doctor",
                chat_id=row["tg_user_id"],
                kind="quarantine_declined",
                params={"code": row["code"]},
                dedupe_key=f"qdecline:{row['id']}:{tg_user_id}",
            )
        return await self._existing(row["id"])

    async def set_phone(self, tg_user_id: int, phone: str) -> None:
        await self.pool.execute(_SET_PHONE, tg_user_id, phone)

    async def confirm_home(self, tg_user_id: int) -> Case:
        """The patient confirms the proposed home point; the 30 m rule applies from now."""
        row = await self.pool.fetchrow(_CONFIRM_HOME, tg_user_id)
        if row is None:
            case = await self.case_of_patient(tg_user_id)
            if case is not None and case.home_confirmed:
                return case  # pressed twice: nothing more to do
        return await self._case_after(row, "quarantine.no_home_yet")

    async def reject_home(self, tg_user_id: int) -> None:
        """Not at home now: forget the proposal until the patient says "I'm home"."""
        await self.pool.execute(_REJECT_HOME, tg_user_id)

    async def home_here(self, tg_user_id: int, *, now: datetime) -> Case:
        """ "I'm home now": the latest precise fix (under 5 minutes old) becomes home."""
        row = await self.pool.fetchrow(_HOME_HERE, tg_user_id, now)
        return await self._case_after(row, "quarantine.no_recent_fix")

    # --------------------------------------------------------------- endings

    async def close_finished(self, today: date) -> int:
        """Close the cases whose isolation ended before ``today``: open episodes end, the
        patient is told they may stop sharing, the last position is forgotten."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_CLOSE_FINISHED, today)
            if rows:
                await conn.execute(_CLOSE_EPISODES, [r["id"] for r in rows])
            messages = [
                Queued(
                    "quarantine",
                    row["patient_tg_user_id"],
                    "quarantine_patient",
                    {"kind": "case_closed"},
                    f"qend:{row['id']}",
                )
                for row in rows
                if row["patient_tg_user_id"] is not None
            ]
            messages += [
                Queued(
                    "doctor",
                    row["doctor"],
                    "quarantine_case_closed",
                    {"code": row["code"]},
                    f"qend-doctor:{row['id']}",
                )
                for row in rows
            ]
            await enqueue_many(conn, messages)
        await self.index.drop([r["id"] for r in rows])
        return len(rows)


def _doctor(row: Row) -> Doctor:
    return Doctor(row["id"], row["tg_user_id"], row["district"], row["on_duty"])


async def _audit(conn: Connection, tg_user_id: int, action: str, case_id: int) -> None:
    """The audit row of a person's step on a case."""
    await record(conn, actor=f"tg:{tg_user_id}", action=action, subject=f"case:{case_id}")
