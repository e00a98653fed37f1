"""The health registry's writers: CSV imports and the laboratories' push API.

Every row is validated; a rejected row gets its line number and a reason, the rest are
written in chunks (one transaction each) with ``ON CONFLICT DO NOTHING`` on their
natural keys, so importing the same file twice adds nothing. After each chunk the
statuses of the IINs it touched are invalidated and new positive results are handed to
the exposure search.

Laboratory results are corrected in real life. A result for a sample (IIN, sample time,
laboratory) already stored with another outcome is a **correction** when it is not older
than the stored one: it supersedes it (both kept, the old one marked with when and by
which result). A result that repeats the stored outcome, or one the sample's history
already holds, is a duplicate (replaying a laboratory's old file after a correction
changes nothing); an older result with another outcome is refused (``result.outdated``).
A row whose result is ``withdrawn`` (FHIR's entered-in-error) withdraws the sample's
current result: it stops counting, with who did it, in the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services.ambulance_rows import CodeSet
from services.audit import record
from services.db import Connection
from services.registry_rows import (
    CLOCK_SKEW,
    COLUMNS,
    PARSERS,
    WITHDRAWN,
    ImportReport,
    Rejected,
    RowError,
    RowParser,
    ambulance_row,
)
from services.status import StatusService

log = logging.getLogger(__name__)

CHUNK = 10_000
YIELD_EVERY = 0.002  # seconds of parsing between turns of the event loop
# Chunks being written while the next is parsed: PostgreSQL works on the other core.
STORES_IN_FLIGHT = 2

_STAGE = {
    "pcr": "CREATE TEMP TABLE IF NOT EXISTS stage_pcr (iin text, sampled_at timestamptz, "
    "result_at timestamptz, result text, laboratory text) ON COMMIT DELETE ROWS",
    "contacts": "CREATE TEMP TABLE IF NOT EXISTS stage_contacts (iin text, "
    "registered_at timestamptz, isolation_end timestamptz) ON COMMIT DELETE ROWS",
    "phones": "CREATE TEMP TABLE IF NOT EXISTS stage_phones (iin text, phone text) "
    "ON COMMIT DELETE ROWS",
    "orgs": "CREATE TEMP TABLE IF NOT EXISTS stage_orgs (bin text, name text, "
    "activity_code text, head_phone text, allowed boolean) ON COMMIT DELETE ROWS",
    "pois": "CREATE TEMP TABLE IF NOT EXISTS stage_pois (kind text, name text, "
    "latitude double precision, longitude double precision, residents integer) "
    "ON COMMIT DELETE ROWS",
    "ambulance": "CREATE TEMP TABLE IF NOT EXISTS stage_ambulance (call_id text, "
    "called_at timestamptz, latitude double precision, longitude double precision, "
    "address text, code text, outcome text, hospital text, placed_at timestamptz, "
    "system text) ON COMMIT DELETE ROWS",
}
_MERGE = {
    "pcr": """
        WITH added AS (
            INSERT INTO pcr_results (iin, sampled_at, result_at, result, laboratory, source)
            SELECT iin, sampled_at, result_at, result, laboratory, $1 FROM stage_pcr
             WHERE result <> 'withdrawn'
            ON CONFLICT (iin, sampled_at, laboratory) WHERE superseded_at IS NULL DO NOTHING
            RETURNING id, iin, result, result_at
        ), isolations AS (
            INSERT INTO case_isolations (pcr_result_id, iin, starts_at, ends_at)
            SELECT id, iin, result_at, result_at + make_interval(days => $2)
              FROM added WHERE result = 'positive'
            RETURNING pcr_result_id
        )
        SELECT (SELECT count(*) FROM added) AS added,
               (SELECT array_agg(DISTINCT iin) FROM added) AS iins,
               (SELECT array_agg(pcr_result_id) FROM isolations) AS positives
    """,
    "contacts": """
        WITH added AS (
            INSERT INTO registered_contacts (iin, registered_at, isolation_end)
            SELECT iin, registered_at, isolation_end FROM stage_contacts
            ON CONFLICT DO NOTHING
            RETURNING iin
        )
        SELECT count(*) AS added, array_agg(DISTINCT iin) AS iins, NULL::bigint[] AS positives
          FROM added
    """,
    "phones": """
        WITH added AS (
            INSERT INTO citizen_phones (iin, phone) SELECT iin, phone FROM stage_phones
            ON CONFLICT DO NOTHING
            RETURNING iin
        )
        SELECT count(*) AS added, NULL::text[] AS iins, NULL::bigint[] AS positives FROM added
    """,
    # The tax register is re-exported whole: a changed organisation is updated (and
    # counted), an unchanged one is left alone, so the same file twice adds nothing.
    "orgs": """
        WITH added AS (
            INSERT INTO organisations (bin, name, activity_code, head_phone, allowed, source)
            SELECT DISTINCT ON (bin) bin, name, activity_code, head_phone, allowed, $1
              FROM stage_orgs ORDER BY bin, ctid DESC  -- a BIN twice: its last row wins
            ON CONFLICT (bin) DO UPDATE SET name = EXCLUDED.name,
                activity_code = EXCLUDED.activity_code, head_phone = EXCLUDED.head_phone,
                allowed = EXCLUDED.allowed, source = EXCLUDED.source, imported_at = now()
             WHERE (organisations.name, organisations.activity_code,
                    organisations.head_phone, organisations.allowed)
                IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.activity_code,
                                  EXCLUDED.head_phone, EXCLUDED.allowed)
            RETURNING bin
        )
        SELECT count(*) AS added, NULL::text[] AS iins, NULL::bigint[] AS positives FROM added
    """,
    "pois": """
        WITH added AS (
            INSERT INTO points_of_interest (kind, name, latitude, longitude, residents, source)
            SELECT kind, name, latitude, longitude, residents, $1 FROM stage_pois
            ON CONFLICT DO NOTHING
            RETURNING id
        )
        SELECT count(*) AS added, NULL::text[] AS iins, NULL::bigint[] AS positives FROM added
    """,
    # A call is known by its dispatch system's id: sent again, it adds nothing.
    "ambulance": """
        WITH added AS (
            INSERT INTO ambulance_calls (call_id, called_at, latitude, longitude, address,
                                         code, outcome, hospital, placed_at, system, source)
            SELECT call_id, called_at, latitude, longitude, address, code, outcome,
                   hospital, placed_at, system, $1 FROM stage_ambulance
            ON CONFLICT (system, call_id) DO NOTHING
            RETURNING id
        )
        SELECT count(*) AS added, NULL::text[] AS iins, NULL::bigint[] AS positives FROM added
    """,
}


Progress = Callable[[int], None]
OnPositives = Callable[[list[int]], Awaitable[object]]
OnPositivesWithdrawn = Callable[[Connection, list[int]], Awaitable[object]]


class RegistryImporter:
    def __init__(
        self,
        pool: asyncpg.Pool,
        statuses: StatusService,
        *,
        timezone: str = "Asia/Almaty",
        positive_isolation_days: int = 14,
        on_positives: OnPositives | None = None,
        on_positives_withdrawn: OnPositivesWithdrawn | None = None,
        ambulance_codes: CodeSet | None = None,
    ) -> None:
        """``on_positives``: after the commit, with new positive results (the exposure
        search); ``on_positives_withdrawn``: in the transaction, with positive results that
        stopped counting (superseded by a negative, or withdrawn)."""
        self.pool = pool
        self.statuses = statuses
        self.tz = ZoneInfo(timezone)
        self.positive_isolation_days = positive_isolation_days
        self.on_positives = on_positives
        self.on_positives_withdrawn = on_positives_withdrawn
        self._parsers: dict[str, RowParser] = {
            **PARSERS,
            "ambulance": partial(ambulance_row, codes=ambulance_codes or CodeSet()),
        }

    async def import_rows(
        self,
        kind: str,
        rows: Iterable[tuple[int, list[str] | None]],
        *,
        source: str = "import",
        actor: str | None = None,
        about: dict[str, Any] | None = None,
        progress: Progress | None = None,
        refused: Iterable[Rejected] = (),
    ) -> ImportReport:
        """Validate and store ``(line, fields)`` rows; ``fields`` None is an unreadable row.
        ``refused``: items of the same batch refused before they became rows (a FHIR
        entry that is no result), reported with the rest.

        Audited at both ends: ``import.start`` (``actor``, else ``source``; ``about``: the
        file's name and size, ...) is written before the first row, ``import.end`` with
        the counts when the import ends, also when it fails or is cancelled; an import
        killed outright leaves its start row alone, the two sharing ``details.import``."""
        started = time.perf_counter()
        report = self._report(kind)
        who = actor or source
        import_id = secrets.token_hex(6)
        await record(
            self.pool,
            actor=who,
            action="import.start",
            subject=kind,
            details={"import": import_id, "source": source, **(about or {})},
        )
        outcome: dict[str, Any] = {"status": "done"}
        try:
            for item in refused:
                report.rows += 1
                report.reject(item)
            storing: list[asyncio.Task[None]] = []
            async with _cancelled_on_failure(storing):
                await self._parse_and_store(kind, rows, source, progress, report, storing)
            report.rejected.sort(key=lambda rejected: rejected.line)
        except asyncio.CancelledError:
            outcome = {"status": "cancelled"}
            raise
        except BaseException as error:
            outcome = {"status": "failed", "error": type(error).__name__}
            raise
        finally:
            report.seconds = time.perf_counter() - started
            end = {"import": import_id, **outcome, **report.counts()}
            end["seconds"] = round(report.seconds, 2)
            # Written even as the task is being cancelled (a stopped command, a dropped
            # upload): shielded, so the end row is not cut off half-way.
            try:
                await asyncio.shield(
                    record(self.pool, actor=who, action="import.end", subject=kind, details=end)
                )
            except Exception:
                if outcome["status"] == "done":
                    raise
                log.warning("import %s (%s): its end could not be audited", import_id, kind)
        return report

    def _report(self, kind: str) -> ImportReport:
        return ImportReport(kind)

    def _parser(self, kind: str) -> tuple[RowParser, int]:
        """How a row of ``kind`` is checked, and how many fields it has."""
        return self._parsers[kind], len(COLUMNS[kind])

    async def _parse_and_store(
        self,
        kind: str,
        rows: Iterable[tuple[int, list[str] | None]],
        source: str,
        progress: Progress | None,
        report: ImportReport,
        storing: list[asyncio.Task[None]],
    ) -> None:
        """Each chunk is one transaction: all of it is stored or none; a failed import can
        be run again and adds only what is missing."""
        parse, width = self._parser(kind)
        latest = datetime.now(UTC) + CLOCK_SKEW
        chunk: list[tuple[Any, ...]] = []
        # Each row's line number, for a refusal found when storing. Numbers only: keeping
        # every row's fields alive cost the import a third of its speed in the collector.
        lines: list[int] = []
        yielded = time.perf_counter()
        for line, fields in rows:
            report.rows += 1
            # Parsing runs on the event loop: every few milliseconds it lets the rest run
            # (the previous chunk's store, the bots, /healthz), whatever the rows cost.
            if report.rows % 64 == 0 and time.perf_counter() - yielded > YIELD_EVERY:
                await asyncio.sleep(0)
                yielded = time.perf_counter()
            if fields is None:
                report.reject(Rejected(line, "row.malformed", []))
                continue
            if len(fields) != width:
                report.reject(Rejected(line, "row.columns", fields))
                continue
            if any("\x00" in field for field in fields):
                report.reject(Rejected(line, "row.nul", fields))
                continue
            try:
                chunk.append(parse(fields, self.tz, latest))
            except RowError as error:
                report.reject(Rejected(line, error.code, fields))
                continue
            lines.append(line)
            if len(chunk) >= CHUNK:
                if len(storing) >= STORES_IN_FLIGHT:
                    await storing.pop(0)
                storing.append(
                    asyncio.create_task(self._store(kind, chunk, source, report, lines))
                )
                chunk, lines = [], []
                if progress is not None:
                    progress(report.rows)
        while storing:
            await storing.pop(0)
        if chunk:
            await self._store(kind, chunk, source, report, lines)
        if progress is not None:
            progress(report.rows)

    async def _store(
        self,
        kind: str,
        chunk: list[tuple[Any, ...]],
        source: str,
        report: ImportReport,
        lines: list[int],
    ) -> None:
        if kind == "pcr":
            for wave, wave_lines in _waves(chunk, lines):
                await self._store_pcr(wave, wave_lines, source, report)
            return
        async with self.pool.acquire() as conn, conn.transaction():
            summary = await self._merge(conn, kind, chunk, source)
            touched = list(summary["iins"] or [])
            note = await self.statuses.note_change(conn, touched) if touched else None
        report.accepted += summary["added"]
        report.duplicates += len(chunk) - summary["added"]
        if note is not None:
            await self.statuses.changed(note, touched)

    async def _merge(
        self, conn: Connection, kind: str, chunk: list[tuple[Any, ...]], source: str
    ) -> asyncpg.Record:
        await conn.execute(_STAGE[kind])
        await conn.copy_records_to_table(
            f"stage_{kind}", records=chunk, columns=list(COLUMNS[kind])
        )
        merge = _MERGE[kind]
        if kind == "pcr":
            summary = await conn.fetchrow(merge, source, self.positive_isolation_days)
        elif kind in ("orgs", "pois", "ambulance"):
            summary = await conn.fetchrow(merge, source)
        else:
            summary = await conn.fetchrow(merge)
        assert summary is not None
        return summary

    async def _store_pcr(
        self,
        chunk: list[tuple[Any, ...]],
        lines: list[int],
        source: str,
        report: ImportReport,
    ) -> None:
        """One transaction: new results inserted at once; where a sample's current result
        is there already, a correction, a withdrawal, a duplicate or a refusal (rare, and
        looked at only when the insert left rows out)."""
        async with self.pool.acquire() as conn, conn.transaction():
            summary = await self._merge(conn, "pcr", chunk, source)
            touched = set(summary["iins"] or [])
            positives = list(summary["positives"] or [])
            outcome = _Outcome()
            if summary["added"] < len(chunk):
                outcome = await self._settle_known_samples(conn, chunk, source)
                touched.update(outcome.iins)
                positives.extend(outcome.positives)
                if outcome.stopped_positives and self.on_positives_withdrawn is not None:
                    await self.on_positives_withdrawn(conn, outcome.stopped_positives)
            note = await self.statuses.note_change(conn, sorted(touched)) if touched else None
        report.accepted += summary["added"]
        report.corrected += outcome.corrected
        report.withdrawn += outcome.withdrawn
        for index, code in outcome.refused:
            report.reject(Rejected(lines[index], code, _as_fields(chunk[index])))
        report.duplicates += (
            len(chunk)
            - summary["added"]
            - outcome.corrected
            - outcome.withdrawn
            - len(outcome.refused)
        )
        # The exposure search first: it needs only PostgreSQL, and a result it missed is
        # searched later by the catch-up job (ExposureService.catch_up).
        if positives:
            report.positives.extend(positives)
            if self.on_positives is not None:
                await self.on_positives(positives)
        if note is not None:
            await self.statuses.changed(note, touched)

    async def _settle_known_samples(
        self, conn: Connection, chunk: list[tuple[Any, ...]], source: str
    ) -> _Outcome:
        """The staged rows the insert left out because their sample has a current result:
        each is a duplicate, a correction, a withdrawal or refused (see the module's
        docstring). Rows whose sample has the same outcome stored are duplicates and are
        not even read back."""
        index = {_sample_key(row[0], row[1], row[4]): i for i, row in enumerate(chunk)}
        outcome = _Outcome()
        # Locked, so that two writers of one sample settle one after the other.
        rows = await conn.fetch(_KNOWN_SAMPLES)
        corrections: list[tuple[int, int]] = []  # (chunk index, superseded result id)
        withdrawals: list[tuple[int, int]] = []
        for row in rows:
            i = index[_sample_key(row["iin"], row["sampled_at"], row["laboratory"])]
            staged = chunk[i]
            if staged[3] == WITHDRAWN:
                if not row["current_withdrawn"]:
                    withdrawals.append((i, row["current_id"]))
                continue
            replay = row["in_history"] or (
                row["current_result"] == staged[3] and row["current_result_at"] == staged[2]
            )
            if replay:
                continue
            if row["current_withdrawn"] or staged[2] >= row["current_result_at"]:
                corrections.append((i, row["current_id"]))
            else:
                outcome.refused.append((i, "result.outdated"))
        for orphan in await conn.fetch(_NOTHING_TO_WITHDRAW):
            i = index[_sample_key(orphan["iin"], orphan["sampled_at"], orphan["laboratory"])]
            outcome.refused.append((i, "result.nothing_to_withdraw"))
        if withdrawals:
            withdrawn = await conn.fetch(
                "UPDATE pcr_results SET withdrawn_at = now(), withdrawn_by = $2, "
                "withdrawn_reason = 'entered in error' WHERE id = ANY($1::bigint[]) "
                "RETURNING id, iin, result",
                [result_id for _, result_id in withdrawals],
                source,
            )
            outcome.withdrawn = len(withdrawn)
            for row in withdrawn:
                outcome.iins.add(row["iin"])
                if row["result"] == "positive":
                    outcome.stopped_positives.append(row["id"])
                await record(
                    conn,
                    actor=source,
                    action="pcr.withdraw",
                    subject=row["iin"],
                    details={"result": row["id"], "reason": "entered in error"},
                )
        if corrections:
            await self._correct(conn, chunk, corrections, source, outcome)
        return outcome

    async def _correct(
        self,
        conn: Connection,
        chunk: list[tuple[Any, ...]],
        corrections: list[tuple[int, int]],
        source: str,
        outcome: _Outcome,
    ) -> None:
        """Supersede each sample's current result by the staged one: the old row is kept,
        marked with when and by which result; a positive gets its isolation period."""
        old_ids = [old for _, old in corrections]
        stopped = await conn.fetch(
            "UPDATE pcr_results SET superseded_at = now() WHERE id = ANY($1::bigint[]) "
            "RETURNING id, result, withdrawn_at IS NOT NULL AS withdrawn",
            old_ids,
        )
        outcome.stopped_positives.extend(
            r["id"] for r in stopped if r["result"] == "positive" and not r["withdrawn"]
        )
        staged = [chunk[i] for i, _ in corrections]
        added = await conn.fetch(
            """
            INSERT INTO pcr_results (iin, sampled_at, result_at, result, laboratory, source)
            SELECT iin, sampled_at, result_at, result, laboratory, $6
              FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[],
                          $5::text[]) AS c(iin, sampled_at, result_at, result, laboratory)
            RETURNING id, iin, sampled_at, laboratory, result, result_at
            """,
            *([row[column] for row in staged] for column in range(5)),
            source,
        )
        new_id = {_sample_key(r["iin"], r["sampled_at"], r["laboratory"]): r["id"] for r in added}
        await conn.execute(
            "UPDATE pcr_results o SET superseded_by = n.new_id "
            "FROM unnest($1::bigint[], $2::bigint[]) AS n(old_id, new_id) WHERE o.id = n.old_id",
            old_ids,
            [new_id[_sample_key(row[0], row[1], row[4])] for row in staged],
        )
        positives = [r for r in added if r["result"] == "positive"]
        if positives:
            await conn.execute(
                "INSERT INTO case_isolations (pcr_result_id, iin, starts_at, ends_at) "
                "SELECT id, iin, result_at, result_at + make_interval(days => $4) "
                "FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) "
                "AS p(id, iin, result_at)",
                [r["id"] for r in positives],
                [r["iin"] for r in positives],
                [r["result_at"] for r in positives],
                self.positive_isolation_days,
            )
            outcome.positives.extend(r["id"] for r in positives)
        outcome.corrected = len(added)
        outcome.iins.update(r["iin"] for r in added)


# The staged rows whose sample has a current result that differs from them in outcome or
# is withdrawn, and the staged withdrawals: what _settle_known_samples decides on.
_KNOWN_SAMPLES = """
SELECT s.iin, s.sampled_at, s.laboratory, c.id AS current_id, c.result AS current_result,
       c.result_at AS current_result_at, c.withdrawn_at IS NOT NULL AS current_withdrawn,
       EXISTS (SELECT 1 FROM pcr_results h
                WHERE h.iin = s.iin AND h.sampled_at = s.sampled_at
                  AND h.laboratory = s.laboratory AND h.superseded_at IS NOT NULL
                  AND h.result = s.result AND h.result_at = s.result_at) AS in_history
  FROM stage_pcr s
 CROSS JOIN LATERAL (
       -- one look-up of the sample's current result per staged row, never a scan
       SELECT c.id, c.result, c.result_at, c.withdrawn_at FROM pcr_results c
        WHERE c.iin = s.iin AND c.sampled_at = s.sampled_at
          AND c.laboratory = s.laboratory AND c.superseded_at IS NULL
          AND (s.result = 'withdrawn' OR c.result <> s.result OR c.withdrawn_at IS NOT NULL)
          FOR UPDATE
 ) c
"""
_NOTHING_TO_WITHDRAW = """
SELECT s.iin, s.sampled_at, s.laboratory FROM stage_pcr s
 WHERE s.result = 'withdrawn' AND NOT EXISTS (
       SELECT 1 FROM pcr_results c WHERE c.iin = s.iin AND c.sampled_at = s.sampled_at
          AND c.laboratory = s.laboratory AND c.superseded_at IS NULL)
"""


@dataclass
class _Outcome:
    """What settling a chunk's known samples did."""

    corrected: int = 0
    withdrawn: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (chunk index, code)
    iins: set[str] = field(default_factory=set)
    positives: list[int] = field(default_factory=list)  # new positive results
    stopped_positives: list[int] = field(default_factory=list)  # positives that stopped counting


def _sample_key(iin: str, sampled_at: datetime, laboratory: str) -> str:
    """A sample (IIN, sample time, laboratory) as a string: an instant however written."""
    return f"{iin}|{sampled_at.timestamp()}|{laboratory}"


def _as_fields(row: tuple[Any, ...]) -> list[str]:
    """A parsed row as the report shows a refused one."""
    return [v.isoformat() if isinstance(v, datetime) else str(v) for v in row]


def _waves(
    chunk: list[tuple[Any, ...]], lines: list[int]
) -> Iterator[tuple[list[tuple[Any, ...]], list[int]]]:
    """The chunk cut so that no sample appears twice in one part, in order: a sample's
    negative then its correction in one file are stored one after the other."""
    # Keys as strings: untracked by the garbage collector, which tuples of every row of a
    # 500,000-row import would keep busy.
    keys = [_sample_key(row[0], row[1], row[4]) for row in chunk]
    if len(set(keys)) == len(keys):
        yield chunk, lines
        return
    seen: dict[str, int] = {}
    depth: list[int] = []
    for key in keys:
        seen[key] = seen.get(key, -1) + 1
        depth.append(seen[key])
    for level in range(max(depth) + 1):
        picked = [i for i, d in enumerate(depth) if d == level]
        yield [chunk[i] for i in picked], [lines[i] for i in picked]


@contextlib.asynccontextmanager
async def _cancelled_on_failure(storing: list[asyncio.Task[None]]) -> AsyncIterator[None]:
    """When the import fails (or is cancelled), the stores still in flight are cancelled
    and waited for before the failure goes on."""
    try:
        yield
    except BaseException:
        for task in storing:
            task.cancel()
        await asyncio.gather(*storing, return_exceptions=True)
        raise
