"""Live-location fixes in: a batch is validated, judged against each case's home, run
through the tracking state machine in one transaction, and sampled on the way to the
track table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from services.db import Connection
from services.location_fixes import Fix, validate_fix
from services.quarantine.episodes import emit, save_states
from services.quarantine.index import QuarantineIndex
from services.quarantine.model import IngestReport
from services.quarantine.rows import LOCK_BY_PATIENT
from services.quarantine.tracking import (
    Before,
    Event,
    TrackState,
    apply_fix,
    judge_all,
    seen_unkept,
    worth_keeping,
)

_INSERT_FIXES = """
INSERT INTO location_fixes
    (case_id, message_id, fixed_at, latitude, longitude, accuracy, verdict, distance_m)
SELECT * FROM unnest($1::bigint[], $2::integer[], $3::timestamptz[], $4::float8[],
                     $5::float8[], $6::real[], $7::text[], $8::real[])
ON CONFLICT DO NOTHING
RETURNING case_id, message_id, fixed_at, latitude, longitude
"""

_FixKey = tuple[int, int, datetime, float, float]


class IngestService:
    def __init__(
        self, pool: asyncpg.Pool, index: QuarantineIndex, *, sample_every: timedelta
    ) -> None:
        self.pool = pool
        self.index = index
        self.sample_every = sample_every
        """At home, one fix per this period is stored; zero stores every fix."""

    async def ingest(self, fixes: Sequence[Fix]) -> IngestReport:
        """Take in a batch of fixes and apply the new ones to their cases, in one transaction:
        a duplicate adds nothing, an older fix than the case has seen is kept but does not
        move the state, alerts and patients' notices go to the outbox with the change.

        Every new fix moves the case's state; only those that change or could change a
        decision are stored as rows (see :func:`~services.quarantine.tracking.worth_keeping`):
        at home, one per ``sample_every``."""
        report = IngestReport()
        good: dict[_FixKey, Fix] = {}
        for fix in fixes:
            if not validate_fix(fix):
                report.invalid += 1
                continue
            key = (fix.tg_user_id, fix.message_id, fix.at, fix.latitude, fix.longitude)
            if key in good:
                report.duplicate += 1
            good[key] = fix
        if not good:
            return report
        users = sorted({f.tg_user_id for f in good.values()})
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(LOCK_BY_PATIENT, users)
            states = {r["patient_tg_user_id"]: TrackState.from_row(r) for r in rows}
            batch = [f for f in good.values() if f.tg_user_id in states]
            report.stranger += len(good) - len(batch)
            if not batch:
                return report
            verdicts, distances = judge_all(batch, states)
            # A fix newer than anything the case has seen is new by construction. An older
            # one is new only if it is not stored yet, or, within the stretch whose fixes
            # at home were sampled out, not a fix the case has already seen.
            fresh: set[int] = set()
            older: list[int] = []
            for i, fix in enumerate(batch):
                state = states[fix.tg_user_id]
                if state.last_fix_at is None or fix.at > state.last_fix_at:
                    fresh.add(i)
                elif seen_unkept(state, fix, verdicts[i]):
                    report.duplicate += 1
                else:
                    older.append(i)
            new = await _store(
                conn, [(batch[i], states, verdicts[i], distances[i]) for i in older]
            )
            report.duplicate += len(older) - len(new)
            events: list[Event] = []
            touched: dict[int, TrackState] = {}
            keep: list[int] = []
            period = self.sample_every
            order = sorted(range(len(batch)), key=lambda i: (batch[i].tg_user_id, batch[i].at))
            for i in order:
                fix = batch[i]
                state = states[fix.tg_user_id]
                if i in fresh:
                    before = Before.of(state, len(events), report.implausible)
                    apply_fix(state, fix, verdicts[i], distances[i], events, report)
                    if worth_keeping(period, before, state, fix, verdicts[i], events, report):
                        keep.append(i)
                        state.last_kept_fix_at = fix.at
                    else:
                        report.sampled += 1
                elif (state.id, fix.message_id, fix.at, fix.latitude, fix.longitude) in new:
                    apply_fix(state, fix, verdicts[i], distances[i], events, report)
                else:
                    continue
                report.stored += 1
                touched[state.id] = state
            await _store(conn, [(batch[i], states, verdicts[i], distances[i]) for i in keep])
            await emit(conn, events, report)
            if touched:
                await save_states(conn, touched.values())
        await self.index.advance(touched.values())
        return report


async def _store(
    conn: Connection,
    rows: list[tuple[Fix, dict[int, TrackState], str, float | None]],
) -> set[_FixKey]:
    """Insert fixes; returns the keys of those not stored before."""
    if not rows:
        return set()
    inserted = await conn.fetch(
        _INSERT_FIXES,
        [states[f.tg_user_id].id for f, states, _, _ in rows],
        [f.message_id for f, _, _, _ in rows],
        [f.at for f, _, _, _ in rows],
        [f.latitude for f, _, _, _ in rows],
        [f.longitude for f, _, _, _ in rows],
        [f.accuracy for f, _, _, _ in rows],
        [verdict for _, _, verdict, _ in rows],
        [distance for _, _, _, distance in rows],
    )
    return {
        (r["case_id"], r["message_id"], r["fixed_at"], r["latitude"], r["longitude"])
        for r in inserted
    }
