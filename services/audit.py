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


async def audited_change(
    pool: asyncpg.Pool,
    sql: str,
    *args: object,
    actor: str,
    action: str,
    subject: str,
    details: dict[str, Any] | None = None,
) -> bool:
    """Run a guarded ``UPDATE ... RETURNING`` and, in the same transaction, record it in
    the audit log when its guard held; False when it changed nothing (and nothing is
    recorded)."""
    async with pool.acquire() as conn, conn.transaction():
        changed = await conn.fetchval(sql, *args) is not None
        if changed:
            await record(conn, actor=actor, action=action, subject=subject, details=details)
    return changed


GENESIS = b"\0" * 32
BATCH = 5_000


def _json_canonical(row: asyncpg.Record) -> bytes:
    """The canonical form of rows chained by the job that chained rows until migration
    0032 (up to audit_chain_head.json_form_upto): their hashes stay as they were."""
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


def _field(value: str | None) -> bytes:
    if value is None:
        return b"-,"
    data = value.encode()
    return b"%d:%s," % (len(data), data)


def canonical(row: asyncpg.Record) -> bytes:
    """The bytes a row's hash covers, as the insert trigger (migration 0032) builds them:
    each of id, time (UTC), actor, action, subject and details (PostgreSQL's jsonb text,
    selected as ``details_text``) as '<bytes>:<text>,' or '-,' for NULL."""
    at = row["at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = (str(row["id"]), at, row["actor"], row["action"], row["subject"])
    return b"".join(_field(v) for v in (*fields, row["details_text"]))


def link(key: bytes, prev_hash: bytes, row: asyncpg.Record, *, json_form: bool = False) -> bytes:
    """HMAC-SHA256 under a key kept outside the database: someone who can change rows in
    PostgreSQL cannot compute the hashes that would hide the change."""
    form = _json_canonical(row) if json_form else canonical(row)
    return hmac.new(key, prev_hash + form, hashlib.sha256).digest()


async def head(pool: asyncpg.Pool) -> tuple[int, str]:
    """The chain's last row: its chain_seq and hash in hex (keep a copy outside the
    database for ``verify --head``)."""
    row = await pool.fetchrow("SELECT chain_seq, hash FROM audit_chain_head")
    return (row["chain_seq"], bytes(row["hash"]).hex()) if row else (0, GENESIS.hex())


@dataclass(frozen=True)
class ChainReport:
    checked: int
    broken: list[str]  # what is wrong, one line each, first problems first
    unchained: int  # rows written before migration 0032 by a session without the key

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
    ``head`` (a chain_seq and the start of its hash in hex, as logged or printed earlier),
    the chain must still hold that row unchanged: rows cut off the end are found too."""
    broken: list[str] = []
    prev, expected_seq, checked = GENESIS, 1, 0
    recorded_seq, recorded_prefix = head if head is not None else (None, "")
    seen_recorded = False
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        stored = await conn.fetchrow(
            "SELECT chain_seq, hash, json_form_upto FROM audit_chain_head"
        )
        json_form_upto = stored["json_form_upto"] if stored else 0
        cursor = conn.cursor(
            "SELECT id, at, actor, action, subject, details, details::text AS details_text,"
            " chain_seq, prev_hash, hash"
            " FROM audit_log WHERE chain_seq IS NOT NULL ORDER BY chain_seq",
            prefetch=BATCH,
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
            json_form = row["chain_seq"] <= json_form_upto
            if link(key, bytes(row["prev_hash"]), row, json_form=json_form) != bytes(row["hash"]):
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
        unchained = await conn.fetchval("SELECT count(*) FROM audit_log WHERE chain_seq IS NULL")
    return ChainReport(checked, broken, int(unchained))
