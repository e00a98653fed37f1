"""The audit log: who looked at or changed what (a table, never a log file)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.db import Connection


async def record(
    conn: Connection | asyncpg.Pool,
    *,
    actor: str,
    action: str,
    subject: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4)",
        actor,
        action,
        subject,
        details or {},
    )
