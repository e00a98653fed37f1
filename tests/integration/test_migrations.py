from pathlib import Path

import asyncpg
import pytest

from services.migrations import MIGRATIONS_DIR, MigrationError, migrate, status


def _copy_migrations(tmp_path: Path) -> Path:
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    return tmp_path


async def test_all_migrations_apply_to_an_empty_database_and_twice_is_a_no_op(
    empty_db: asyncpg.Connection,
) -> None:
    first = await migrate(empty_db)
    functions = sorted(f"functions/{p.name}" for p in (MIGRATIONS_DIR / "functions").glob("*.sql"))
    assert first == sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql")) + functions
    assert await migrate(empty_db) == []
    states = await status(empty_db)
    assert all(s.applied_at is not None and not s.edited for s in states)
    assert await empty_db.fetchval("SELECT to_regclass('processed_updates') IS NOT NULL")


async def test_an_applied_migration_that_was_edited_is_refused(
    empty_db: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = _copy_migrations(tmp_path)
    await migrate(empty_db, folder)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationError, match="was edited after it was applied"):
        await migrate(empty_db, folder)
    assert any(s.edited for s in await status(empty_db, folder))


async def test_a_failing_migration_leaves_nothing_half_applied(
    empty_db: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = _copy_migrations(tmp_path)
    (folder / "9999_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nINSERT INTO no_such_table VALUES (1);\n"
    )
    with pytest.raises(asyncpg.UndefinedTableError):
        await migrate(empty_db, folder)
    assert not await empty_db.fetchval("SELECT to_regclass('half_done') IS NOT NULL")
    pending = [s.name for s in await status(empty_db, folder) if s.applied_at is None]
    assert pending == ["9999_broken.sql"]


async def test_a_changed_function_file_is_applied_again_and_an_unchanged_one_is_not(
    empty_db: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = _copy_migrations(tmp_path)
    (folder / "functions").mkdir()
    live = folder / "functions" / "answer.sql"
    live.write_text("CREATE OR REPLACE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 41'")
    assert "functions/answer.sql" in await migrate(empty_db, folder)
    assert await migrate(empty_db, folder) == []
    live.write_text("CREATE OR REPLACE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42'")
    assert await migrate(empty_db, folder) == ["functions/answer.sql"]
    assert await empty_db.fetchval("SELECT answer()") == 42


async def test_the_live_check_in_function_is_the_one_in_its_functions_file(
    empty_db: asyncpg.Connection,
) -> None:
    await migrate(empty_db)
    source = await empty_db.fetchval(
        "SELECT prosrc FROM pg_proc WHERE proname = 'citybots_check_in'"
    )
    live = (MIGRATIONS_DIR / "functions" / "citybots_check_in.sql").read_text()
    assert source.strip() in live


async def test_the_function_files_change_nothing_after_the_migrations(
    empty_db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Each live definition is the one the last migration to change it wrote: a database
    upgraded migration by migration (the files applied after all of them) and a fresh one
    end with the same functions."""
    folder = _copy_migrations(tmp_path)  # no functions folder: the migrations' own definitions
    await migrate(empty_db, folder)
    names = [p.stem for p in sorted((MIGRATIONS_DIR / "functions").glob("*.sql"))]
    query = "SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.proname = $1"
    written = {n: await empty_db.fetchval(query, n) for n in names}
    assert await migrate(empty_db) == [f"functions/{n}.sql" for n in names]
    assert {n: await empty_db.fetchval(query, n) for n in names} == written
