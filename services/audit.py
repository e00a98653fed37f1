"""The audit log: who looked at or changed what (a table, never a log file)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import asyncpg

from services.db import Connection

log = logging.getLogger(__name__)


def _without_nul(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold NUL; a value typed by someone (a plate on the
    public check page) may: it is kept with U+FFFD in its place, as the bots do."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


async def record(
    conn: Connection | asyncpg.Pool,
    *,
    actor: str,
    action: str,
    subject: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one row to the audit log (text with NUL is stored with U+FFFD instead)."""
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4)",
        _without_nul(actor),
        _without_nul(action),
        _without_nul(subject),
        _without_nul(details or {}),
    )


GENESIS = b"\0" * 32
CHAIN_BATCH = 5_000


def canonical(row: asyncpg.Record) -> bytes:
    """The bytes a row's hash covers: every column it was written with, in one fixed form."""
    details = row["details"]
    if isinstance(details, str):
        details = json.loads(details)
    return json.dumps(
        [
            row["id"],
            row["at"].astimezone(UTC).isoformat(),
            row["actor"],
            row["action"],
            row["subject"],
            details,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def link(key: bytes, prev_hash: bytes, row: asyncpg.Record) -> bytes:
    """HMAC-SHA256 under a key kept outside the database: someone who can change rows in
    PostgreSQL cannot compute the hashes that would hide the change."""
    return hmac.new(key, prev_hash + canonical(row), hashlib.sha256).digest()


async def chain(pool: asyncpg.Pool, key: bytes) -> int:
    """Chain the rows written since the last run, in id order; returns how many. The new
    head is logged, so a copy of it lives outside the database (`verify --head`)."""
    chained = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            head = await conn.fetchrow("SELECT chain_seq, hash FROM audit_chain_head FOR UPDATE")
            assert head is not None, "migration 0018 creates the chain's head"
            seq, prev = head["chain_seq"], bytes(head["hash"])
            rows = await conn.fetch(
                "SELECT id, at, actor, action, subject, details FROM audit_log"
                " WHERE chain_seq IS NULL ORDER BY id LIMIT $1",
                CHAIN_BATCH,
            )
            if not rows:
                return chained
            ids, seqs, prevs, hashes = [], [], [], []
            for row in rows:
                seq += 1
                digest = link(key, prev, row)
                ids.append(row["id"])
                seqs.append(seq)
                prevs.append(prev)
                hashes.append(digest)
                prev = digest
            await conn.execute(
                "UPDATE audit_log a SET chain_seq = c.seq, prev_hash = c.prev, hash = c.hash"
                " FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])"
                " AS c (id, seq, prev, hash) WHERE a.id = c.id",
                ids,
                seqs,
                prevs,
                hashes,
            )
            await conn.execute("UPDATE audit_chain_head SET chain_seq = $1, hash = $2", seq, prev)
            chained += len(rows)
            log.info("audit chain: head #%d %s (%d rows chained)", seq, prev.hex()[:16], len(rows))


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken: list[str]  # what is wrong, one line each, first problems first
    unchained_stale: int  # rows older than the chain job's period still not chained

    @property
    def intact(self) -> bool:
        return not self.broken


async def verify(
    pool: asyncpg.Pool,
    key: bytes,
    *,
    head: tuple[int, str] | None = None,
    limit_problems: int = 20,
) -> ChainReport:
    """Walk the chain from its start: every row's hash must follow from the row and the
    hash before it, chain_seq must have no gaps, and the head must be the last row. With
    ``head`` (a chain_seq and the start of its hash in hex, as the chain job logged it),
    the chain must still hold that row unchanged: rows cut off the end are found too."""
    broken: list[str] = []
    prev, expected_seq, checked = GENESIS, 1, 0
    recorded_seq, recorded_prefix = head if head is not None else (None, "")
    seen_recorded = False
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        stored = await conn.fetchrow("SELECT chain_seq, hash FROM audit_chain_head")
        cursor = conn.cursor(
            "SELECT id, at, actor, action, subject, details, chain_seq, prev_hash, hash"
            " FROM audit_log WHERE chain_seq IS NOT NULL ORDER BY chain_seq",
            prefetch=CHAIN_BATCH,
        )
        async for row in cursor:
            checked += 1
            if row["chain_seq"] != expected_seq:
                broken.append(
                    f"rows {expected_seq}..{row['chain_seq'] - 1} of the chain are missing"
                    f" (deleted before row id {row['id']})"
                )
            if bytes(row["prev_hash"]) != prev:
                broken.append(
                    f"row id {row['id']} (#{row['chain_seq']}) does not follow the row before it"
                )
            if row["chain_seq"] == recorded_seq:
                seen_recorded = bytes(row["hash"]).hex().startswith(recorded_prefix.lower())
            if link(key, bytes(row["prev_hash"]), row) != bytes(row["hash"]):
                broken.append(
                    f"row id {row['id']} (#{row['chain_seq']}) was changed after it was written"
                )
            prev, expected_seq = bytes(row["hash"]), row["chain_seq"] + 1
            if len(broken) >= limit_problems:
                break
        head_seq, head_hash = (
            (stored["chain_seq"], bytes(stored["hash"])) if stored else (0, GENESIS)
        )
        if (head_seq, head_hash) != (expected_seq - 1, prev) and len(broken) < limit_problems:
            broken.append(
                f"the chain ends at #{expected_seq - 1} but its head says #{head_seq}:"
                " rows at the end were removed or replaced"
            )
        if head is not None and not seen_recorded:
            broken.append(
                f"the head recorded earlier (#{head[0]} {head[1]}) is not in the chain"
                " as it was: rows were removed from the end or the chain was rewritten"
            )
        stale = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE chain_seq IS NULL"
            " AND at < now() - interval '5 minutes'"
        )
    return ChainReport(checked, broken, int(stale))
