"""The Mini App's ledger: each opening of the Mini App takes effect once.

An opening is one ``initData`` signed by Telegram, named by its hash. The check-in it
carries is stored in the same transaction as its entry here, with the answer the page
shows; a repeated POST of the same opening gets that answer back and stores nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from services.db import Connection

_CLAIM = """
INSERT INTO miniapp_openings (init_hash, tg_user_id) VALUES ($1, $2)
ON CONFLICT (init_hash) DO NOTHING
RETURNING true
"""


class OpeningLedger:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(
        self, conn: Connection, init_hash: str, tg_user_id: int
    ) -> dict[str, Any] | None:
        """Take the opening in the caller's transaction: None when it is this
        transaction's to handle (it counts once the transaction commits), else the answer
        stored when it was handled (a concurrent claim waits for that one to commit)."""
        if await conn.fetchval(_CLAIM, init_hash, tg_user_id):
            return None
        stored = await conn.fetchval(
            "SELECT answer FROM miniapp_openings WHERE init_hash = $1 AND tg_user_id = $2",
            init_hash,
            tg_user_id,
        )
        return dict(stored) if stored is not None else {}

    async def done(self, conn: Connection, init_hash: str, answer: dict[str, Any]) -> None:
        """Keep the answer of an opening claimed in this transaction."""
        await conn.execute(
            "UPDATE miniapp_openings SET answer = $2 WHERE init_hash = $1", init_hash, answer
        )

    async def purge(self, older_than: timedelta) -> int:
        """Forget openings older than any initData still accepted."""
        result = await self.pool.execute(
            "DELETE FROM miniapp_openings WHERE opened_at < now() - $1::interval", older_than
        )
        return int(result.split()[-1])
