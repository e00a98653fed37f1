"""Disputes: a citizen says their colour is wrong; a health-registry officer decides.

An upheld dispute may move the isolation end, or mark the records behind the colour as
entered in error (the positive results behind a red, the contact registrations behind a
yellow, the negative result behind a green): they stop counting and the status is
recomputed at once. Every decision and every correction is written with who, when and
why (registry_corrections), and the citizen is told the outcome through the outbox (and
their new colour, services/status_notices.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from services.db import Connection, fetch_all, of_row, row_or, value_or
from services.errors import Refusal
from services.outbox import enqueue
from services.status import Colour, Status, StatusService

OnPositivesWithdrawn = Callable[[Connection, list[int]], Awaitable[object]]

_DISPUTED_IIN = "SELECT iin FROM status_disputes WHERE id = $1"
_DISPUTE_LOCKED = "SELECT * FROM status_disputes WHERE id = $1 FOR UPDATE"

# The records behind a colour: those of its kind whose isolation (or, for green, whose
# result) began at the status's ``since`` or later, up to now.
_WITHDRAW_POSITIVES = """
UPDATE pcr_results r SET withdrawn_at = now(), withdrawn_by = $3, withdrawn_reason = $4
  FROM (SELECT p.id FROM pcr_results p LEFT JOIN case_isolations i ON i.pcr_result_id = p.id
         WHERE p.iin = $1 AND p.result = 'positive' AND p.superseded_at IS NULL
           AND p.withdrawn_at IS NULL AND COALESCE(i.starts_at, p.result_at) >= $2
           AND COALESCE(i.starts_at, p.result_at) <= now()) behind
 WHERE r.id = behind.id
RETURNING r.id
"""
_WITHDRAW_NEGATIVE = """
UPDATE pcr_results SET withdrawn_at = now(), withdrawn_by = $3, withdrawn_reason = $4
 WHERE iin = $1 AND result = 'negative' AND superseded_at IS NULL AND withdrawn_at IS NULL
   AND result_at = $2
RETURNING id
"""
_WITHDRAW_CONTACTS = """
UPDATE registered_contacts SET withdrawn_at = now(), withdrawn_by = $3, withdrawn_reason = $4
 WHERE iin = $1 AND withdrawn_at IS NULL AND registered_at >= $2 AND registered_at <= now()
RETURNING id
"""


class DisputeError(Refusal):
    """A dispute refused; ``code`` is the text key that explains it."""


@dataclass(frozen=True)
class Dispute:
    id: int
    tg_user_id: int
    iin: str
    status_shown: str
    claim: str
    test_reference: str | None
    state: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None


_dispute = of_row(Dispute)


class DisputeService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        statuses: StatusService,
        *,
        on_positives_withdrawn: OnPositivesWithdrawn | None = None,
    ) -> None:
        """``on_positives_withdrawn``: in the decision's transaction, with the positive
        results it marked as entered in error (their exposure notices are retracted)."""
        self.pool = pool
        self.statuses = statuses
        self.on_positives_withdrawn = on_positives_withdrawn

    async def open(
        self, tg_user_id: int, iin: str, status_shown: str, claim: str, test_reference: str | None
    ) -> int:
        claim = claim.strip()
        if not 1 <= len(claim) <= 2000:
            raise DisputeError("dispute.claim")
        reference = (test_reference or "").strip() or None
        if reference is not None and len(reference) > 100:
            raise DisputeError("dispute.reference")
        open_count = await self.pool.fetchval(
            "SELECT count(*) FROM status_disputes WHERE tg_user_id = $1 AND state = 'open'",
            tg_user_id,
        )
        if open_count >= 3:
            raise DisputeError("dispute.too_many")
        return int(
            await self.pool.fetchval(
                "INSERT INTO status_disputes (tg_user_id, iin, status_shown, claim, "
                "test_reference) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                tg_user_id,
                iin,
                status_shown,
                claim,
                reference,
            )
        )

    async def list(self, state: str | None = "open") -> list[Dispute]:
        return await fetch_all(
            self.pool,
            _dispute,
            "SELECT * FROM status_disputes WHERE $1::text IS NULL OR state = $1 "
            "ORDER BY created_at, id",
            state,
        )

    async def resolve(
        self,
        dispute_id: int,
        *,
        officer: str,
        upheld: bool,
        note: str,
        isolation_end: datetime | None = None,
        entered_in_error: bool = False,
    ) -> Dispute:
        """Decide a dispute. An upheld dispute may correct the person's current isolation
        end (positive case or contact), or mark the records behind the colour as entered in
        error; each correction is recorded with who and why."""
        if not officer.strip() or not note.strip():
            raise DisputeError("dispute.officer_and_note_required")
        if entered_in_error and not upheld:
            raise DisputeError("dispute.error_needs_uphold")
        status: Status | None = None
        if entered_in_error:
            disputed = await value_or(
                self.pool, _DISPUTED_IIN, dispute_id, refusal=DisputeError("dispute.not_found")
            )
            status = await self.statuses.status(disputed)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await row_or(
                conn, _DISPUTE_LOCKED, dispute_id, refusal=DisputeError("dispute.not_found")
            )
            if row["state"] != "open":
                raise DisputeError("dispute.already_resolved")
            iin = row["iin"]
            if upheld and isolation_end is not None:
                changed = await conn.fetch(
                    """
                    UPDATE case_isolations
                       SET ends_at = greatest($2, starts_at + interval '1 second'),
                           set_by = $3, updated_at = now()
                     WHERE iin = $1 AND ends_at > now() - interval '30 days'
                    RETURNING pcr_result_id
                    """,
                    iin,
                    isolation_end,
                    officer,
                )
                contacts = await conn.fetch(
                    """
                    UPDATE registered_contacts
                       SET isolation_end = greatest($2, registered_at + interval '1 second')
                     WHERE iin = $1 AND isolation_end > now() - interval '30 days'
                    RETURNING id
                    """,
                    iin,
                    isolation_end,
                )
                await conn.execute(
                    "INSERT INTO registry_corrections (officer, iin, action, reason, dispute_id, "
                    "details) VALUES ($1, $2, 'isolation_end', $3, $4, $5)",
                    officer,
                    iin,
                    note,
                    dispute_id,
                    {
                        "isolation_end": isolation_end.isoformat(),
                        "positive_results": [r["pcr_result_id"] for r in changed],
                        "contacts": [r["id"] for r in contacts],
                    },
                )
            if status is not None:
                await self._mark_entered_in_error(conn, iin, status, officer, note, dispute_id)
            await conn.execute(
                "INSERT INTO registry_corrections (officer, iin, action, reason, dispute_id) "
                "VALUES ($1, $2, $3, $4, $5)",
                officer,
                iin,
                "dispute_upheld" if upheld else "dispute_rejected",
                note,
                dispute_id,
            )
            updated = await conn.fetchrow(
                "UPDATE status_disputes SET state = $2, resolved_at = $3, resolved_by = $4, "
                "resolution = $5 WHERE id = $1 RETURNING *",
                dispute_id,
                "upheld" if upheld else "rejected",
                datetime.now(UTC),
                officer,
                note,
            )
            await enqueue(
                conn,
                bot="citizen",
                chat_id=row["tg_user_id"],
                kind="dispute_resolved",
                params={"id": dispute_id, "upheld": upheld, "note": note},
                dedupe_key=f"dispute:{dispute_id}",
            )
            change = await self.statuses.note_change(conn, [iin])
        await self.statuses.changed(change, [iin])
        assert updated is not None
        return _dispute(updated)

    async def _mark_entered_in_error(
        self,
        conn: Connection,
        iin: str,
        status: Status,
        officer: str,
        note: str,
        dispute_id: int,
    ) -> None:
        """The records behind ``status`` stop counting; refused when there are none."""
        if status.since is None or status.colour is Colour.BLUE:
            raise DisputeError("dispute.nothing_behind_colour")
        reason = f"entered in error (dispute #{dispute_id}): {note}"
        results: list[int] = []
        contacts: list[int] = []
        if status.colour is Colour.RED:
            rows = await conn.fetch(_WITHDRAW_POSITIVES, iin, status.since, officer, reason)
            results = [r["id"] for r in rows]
            if results and self.on_positives_withdrawn is not None:
                await self.on_positives_withdrawn(conn, results)
        elif status.colour is Colour.YELLOW:
            rows = await conn.fetch(_WITHDRAW_CONTACTS, iin, status.since, officer, reason)
            contacts = [r["id"] for r in rows]
        else:
            rows = await conn.fetch(_WITHDRAW_NEGATIVE, iin, status.since, officer, reason)
            results = [r["id"] for r in rows]
        if not results and not contacts:
            raise DisputeError("dispute.nothing_behind_colour")
        await conn.execute(
            "INSERT INTO registry_corrections (officer, iin, action, reason, dispute_id, "
            "details) VALUES ($1, $2, 'entered_in_error', $3, $4, $5)",
            officer,
            iin,
            note,
            dispute_id,
            {"colour": status.colour.value, "results": results, "contacts": contacts},
        )
