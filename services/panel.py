"""The admin panel's users, roles and sessions (PostgreSQL is the truth: a lost Redis
logs nobody out), and its audit-log search."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.audit import record
from services.db import Connection, fetch_all, of_row, row_or, value_or
from services.errors import Refusal
from services.passwords import (
    DUMMY_HASH,
    WeakPassword,
    check_strength,
    hash_password,
    needs_rehash,
    verify_password,
)

ROLES = (
    "admin",
    "analyst",
    "epidemiologist",
    "permits_officer",
    "registry_officer",
    "operations",
    "communications",
)
ROLE_NAMES = {
    "admin": "Administrator",
    "analyst": "Analyst (situation centre)",
    "epidemiologist": "Epidemiologist",
    "permits_officer": "Permits officer",
    "registry_officer": "Health-registry officer",
    "operations": "Operations (disinfection brigades)",
    "communications": "Communications (city news)",
}
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,39}")
_CREATE_USER = (
    "INSERT INTO panel_users (username, role, password_hash) VALUES ($1, $2, $3)"
    " ON CONFLICT (username) DO NOTHING RETURNING *"
)
_SET_ROLE = "UPDATE panel_users SET role = $2 WHERE id = $1 RETURNING username"
_SET_DISABLED = "UPDATE panel_users SET disabled = $2 WHERE id = $1 RETURNING username"


class PanelError(Refusal, ValueError):
    """A request the panel refuses; ``code`` names why (shown as a clear message)."""


@dataclass(frozen=True)
class PanelUser:
    id: int
    username: str
    role: str
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class Session:
    user: PanelUser
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str | None
    details: dict[str, Any]


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


_user = of_row(PanelUser)


async def _change_user(conn: Connection, sql: str, user_id: int, value: object) -> str:
    """The username of the user ``sql`` changed (to ``value``); PanelError when none."""
    return await value_or(conn, sql, user_id, value, refusal=PanelError("unknown", "no such user"))


def check_new_user(username: str, role: str, password: str) -> str:
    """The normalised username, or PanelError saying what is wrong."""
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise PanelError(
            "username",
            "a username is 3 to 40 letters a-z, digits, dots, dashes or underscores",
        )
    if role not in ROLES:
        raise PanelError("role", "the role must be one of: " + ", ".join(ROLES))
    try:
        check_strength(password, user_inputs=(name, username))
    except WeakPassword as error:
        raise PanelError("password", str(error)) from None
    return name


class PanelService:
    def __init__(self, pool: asyncpg.Pool, *, session_hours: float = 12.0) -> None:
        self.pool = pool
        self.session_life = timedelta(hours=session_hours)

    async def create_user(
        self, username: str, role: str, password: str, *, actor: str
    ) -> PanelUser:
        name = await asyncio.to_thread(check_new_user, username, role, password)
        hashed = await asyncio.to_thread(hash_password, password)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await row_or(
                conn,
                _CREATE_USER,
                name,
                role,
                hashed,
                refusal=PanelError("taken", f"there is already a user called {name}"),
            )
            await record(
                conn,
                actor=actor,
                action="panel.user_created",
                subject=name,
                details={"role": role},
            )
        return _user(row)

    async def users(self) -> list[PanelUser]:
        return await fetch_all(self.pool, _user, "SELECT * FROM panel_users ORDER BY username")

    async def set_role(self, user_id: int, role: str, *, actor: str) -> None:
        if role not in ROLES:
            raise PanelError("role", "the role must be one of: " + ", ".join(ROLES))
        async with self.pool.acquire() as conn, conn.transaction():
            name = await _change_user(conn, _SET_ROLE, user_id, role)
            await record(
                conn,
                actor=actor,
                action="panel.role_changed",
                subject=name,
                details={"role": role},
            )

    async def set_disabled(self, user_id: int, disabled: bool, *, actor: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            name = await _change_user(conn, _SET_DISABLED, user_id, disabled)
            if disabled:  # a disabled user is logged out everywhere at once
                await conn.execute("DELETE FROM panel_sessions WHERE user_id = $1", user_id)
            await record(
                conn,
                actor=actor,
                action="panel.user_disabled" if disabled else "panel.user_enabled",
                subject=name,
            )

    async def log_in(self, username: str, password: str, *, client: str) -> tuple[str, Session]:
        """A new session (token, session) for good credentials; PanelError otherwise,
        the same for an unknown name and a wrong password, and as slow. A good password
        stored under an older hash (scrypt, or Argon2 of older parameters) is hashed
        again with today's."""
        name = username.strip().lower()
        row = await self.pool.fetchrow("SELECT * FROM panel_users WHERE username = $1", name)
        stored = row["password_hash"] if row is not None else DUMMY_HASH
        good = await asyncio.to_thread(verify_password, password, stored)
        if row is None or not good or row["disabled"]:
            await record(
                self.pool,
                actor=f"panel-client:{client}",
                action="panel.login_failed",
                subject=None,
                details={"known_user": row is not None and not row["disabled"]},
            )
            raise PanelError("credentials", "wrong username or password")
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        expires = datetime.now(UTC) + self.session_life
        rehashed = (
            await asyncio.to_thread(hash_password, password) if needs_rehash(stored) else None
        )
        async with self.pool.acquire() as conn, conn.transaction():
            if rehashed is not None:
                await conn.execute(
                    "UPDATE panel_users SET password_hash = $2"
                    " WHERE id = $1 AND password_hash = $3",
                    row["id"],
                    rehashed,
                    stored,
                )
            await conn.execute(
                "INSERT INTO panel_sessions (token_hash, user_id, csrf_token, expires_at)"
                " VALUES ($1, $2, $3, $4)",
                _token_hash(token),
                row["id"],
                csrf,
                expires,
            )
            user_row = await conn.fetchrow(
                "UPDATE panel_users SET last_login_at = now() WHERE id = $1 RETURNING *", row["id"]
            )
            await record(conn, actor=name, action="panel.login", subject=None)
        assert user_row is not None
        return token, Session(user=_user(user_row), csrf_token=csrf, expires_at=expires)

    async def session(self, token: str) -> Session | None:
        if not token or len(token) > 100:
            return None
        row = await self.pool.fetchrow(
            "SELECT s.csrf_token, s.expires_at, u.* FROM panel_sessions s"
            " JOIN panel_users u ON u.id = s.user_id"
            " WHERE s.token_hash = $1 AND s.expires_at > now() AND NOT u.disabled",
            _token_hash(token),
        )
        if row is None:
            return None
        return Session(user=_user(row), csrf_token=row["csrf_token"], expires_at=row["expires_at"])

    async def log_out(self, token: str) -> None:
        await self.pool.execute(
            "DELETE FROM panel_sessions WHERE token_hash = $1", _token_hash(token)
        )

    async def audit_entries(
        self,
        *,
        actor: str = "",
        action: str = "",
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
    ) -> list[AuditEntry]:
        """Newest first; actor and action match as prefixes (``panel.`` finds every panel
        action)."""
        return await fetch_all(
            self.pool,
            of_row(AuditEntry),
            "SELECT * FROM audit_log"
            " WHERE ($1 = '' OR actor LIKE $1 || '%') AND ($2 = '' OR action LIKE $2 || '%')"
            " AND ($3::timestamptz IS NULL OR at >= $3)"
            " AND ($4::timestamptz IS NULL OR at < $4)"
            " ORDER BY at DESC, id DESC LIMIT $5",
            actor.replace("%", "").replace("_", r"\_"),
            action.replace("%", "").replace("_", r"\_"),
            since,
            until,
            limit,
        )
