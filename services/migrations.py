"""Numbered plain-SQL migrations, applied in order, each in its own transaction.

The files are ``services/migrations/NNNN_name.sql``. Each applied file is recorded
with a checksum; applying again is a no-op, and a file edited after it was applied
is refused (add a new migration instead), unless ``REWRITTEN`` names the checksum it was
applied with. An advisory lock lets several workers start at once.

A function that later migrations redefined has its live definition in one file,
``services/migrations/functions/<name>.sql`` (``CREATE OR REPLACE``), so that a reader
finds it without knowing which migration was the last to change it. After the
migrations, each such file is applied again whenever its text has changed since it was
last applied (its checksum is recorded in ``schema_functions``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.db import Connection

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
FUNCTIONS = "functions"  # the folder, inside the migrations folder, of live definitions
_NAME = re.compile(r"(?P<version>\d{4})_(?P<slug>[a-z0-9_]+)\.sql")
_LOCK_KEY = 0x63_69_74_79  # "city"


class MigrationError(RuntimeError):
    pass


# Migrations rewritten after databases applied them: file name -> the sha256 of each text
# databases applied, accepted as this file unchanged (by ``migrate``, ``status`` and a
# restore's ``check_history``); any other checksum is still an edit and refused. A rewrite
# goes here only if a database that ran the former text ends, after ``migrate``, exactly as
# one that runs the new text: so far, removing the copies of a function whose live
# definition is in ``functions/`` and that no migration calls (the file is applied after
# the migrations). Each checksum is of the text on main before the rewrite
# (``git show <commit>:services/migrations/<file> | sha256sum``).
REWRITTEN: Mapping[str, frozenset[str]] = {
    # citybots_check_in, live in functions/citybots_check_in.sql (former texts at d503d3f)
    "0006_check_in_function.sql": frozenset(
        {"9a65c5fa5b7ddc431f66ab166ce3d15c41c38abd111d8a407dcf8a5a0903adc5"}
    ),
    "0020_check_in_plans.sql": frozenset(
        {"13c7412edd5679c298d89a44c30cbbd20b05e2dc749baa13ffc502b27ba8a350"}
    ),
    "0029_verified_venues.sql": frozenset(
        {"81175d5cb7402f747cf1e8451993334d366cbad51884809d599179ff23f79501"}
    ),
    "0048_visits_by_day.sql": frozenset(
        {"1782ea6249c45ad01645512bd696da3ba5c3612415d3d3273e8758a60dd3f7c2"}
    ),
}


def _checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return _checksum(self.sql)

    def applied_as(self, checksum: str) -> bool:
        """Whether a database that recorded ``checksum`` for this file applied its text
        (today's, or a former one listed in ``REWRITTEN``)."""
        return checksum == self.checksum or checksum in REWRITTEN.get(self.name, ())


@dataclass(frozen=True)
class MigrationState:
    version: int
    name: str
    applied_at: datetime | None
    edited: bool = False


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"migration file name {path.name!r} is not NNNN_name.sql")
        migrations.append(Migration(int(match["version"]), path.name, path.read_text("utf-8")))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a number")
    return migrations


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


_CREATE_FUNCTIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_functions (
    name       text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def load_functions(directory: Path) -> dict[str, str]:
    """The live function definitions in ``directory``: file name -> SQL."""
    return {path.name: path.read_text("utf-8") for path in sorted(directory.glob("*.sql"))}


async def _apply_functions(conn: Connection, functions: Mapping[str, str]) -> list[str]:
    """Apply the files of live function definitions whose text changed since last time."""
    await conn.execute(_CREATE_FUNCTIONS_TABLE)
    rows = await conn.fetch("SELECT name, checksum FROM schema_functions")
    recorded = {row["name"]: row["checksum"] for row in rows}
    done: list[str] = []
    for name, sql in functions.items():
        if recorded.get(name) == _checksum(sql):
            continue
        async with conn.transaction():
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_functions (name, checksum) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum,"
                " applied_at = now()",
                name,
                _checksum(sql),
            )
        done.append(f"{FUNCTIONS}/{name}")
    return done


async def _applied(conn: Connection) -> dict[int, dict[str, Any]]:
    rows = await conn.fetch("SELECT version, name, checksum, applied_at FROM schema_migrations")
    return {row["version"]: dict(row) for row in rows}


def _check_unchanged(
    migrations: list[Migration], applied: Mapping[int, Mapping[str, Any]]
) -> None:
    known = {m.version: m for m in migrations}
    for version, row in sorted(applied.items()):
        migration = known.get(version)
        if migration is None:
            raise MigrationError(
                f"the database has migration {row['name']} that this code does not have "
                "(was it made by a newer version?)"
            )
        if not migration.applied_as(row["checksum"]):
            raise MigrationError(
                f"migration {migration.name} was edited after it was applied on "
                f"{row['applied_at']:%Y-%m-%d}; put the change in a new migration file instead"
            )


def check_history(applied: Mapping[int, Mapping[str, Any]]) -> None:
    """Raise MigrationError unless every applied migration (version -> name, checksum,
    applied_at) is one of this code's files, unedited (or applied with a former text that
    ``REWRITTEN`` lists): what a backup made by a newer version, or by edited files, would
    fail."""
    _check_unchanged(load_migrations(), applied)


async def migrate(conn: Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration, then every function definition whose file changed
    (``functions/<name>.sql``); returns the names applied now."""
    migrations = load_migrations(directory)
    functions = load_functions(directory / FUNCTIONS)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        applied = await _applied(conn)
        _check_unchanged(migrations, applied)
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            done.append(migration.name)
        return done + await _apply_functions(conn, functions)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def status(conn: Connection, directory: Path = MIGRATIONS_DIR) -> list[MigrationState]:
    """Every migration with when it was applied (None: pending) and whether it was edited."""
    await conn.execute(_CREATE_TABLE)
    applied = await _applied(conn)
    result = []
    for migration in load_migrations(directory):
        row = applied.get(migration.version)
        result.append(
            MigrationState(
                migration.version,
                migration.name,
                row["applied_at"] if row else None,
                edited=bool(row and not migration.applied_as(row["checksum"])),
            )
        )
    return result
