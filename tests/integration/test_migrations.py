from pathlib import Path

import asyncpg
import pytest

from services.migrations import MIGRATIONS_DIR, REWRITTEN, MigrationError, migrate, status

FUNCTION_FILES = sorted((MIGRATIONS_DIR / "functions").glob("*.sql"))


def _copy_migrations(tmp_path: Path) -> Path:
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    return tmp_path


async def _definitions(conn: asyncpg.Connection) -> dict[str, str | None]:
    """Each function that has a file of its live definition, as the database holds it."""
    query = "SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.proname = $1"
    return {path.stem: await conn.fetchval(query, path.stem) for path in FUNCTION_FILES}


async def _as_the_files_define_them(conn: asyncpg.Connection) -> dict[str, str | None]:
    """The same functions as their files define them (applied in a transaction that is then
    rolled back)."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        for path in FUNCTION_FILES:
            await conn.execute(path.read_text())
        return await _definitions(conn)
    finally:
        await transaction.rollback()


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


async def test_a_rewritten_migration_is_refused_after_any_edit_but_the_listed_rewrite(
    empty_db: asyncpg.Connection, tmp_path: Path
) -> None:
    """REWRITTEN accepts, for each rewritten file, only the checksums it lists for that
    file: an edit of today's text, or another file's former checksum, is still refused."""
    folder = _copy_migrations(tmp_path)
    await migrate(empty_db, folder)
    first, second = sorted(REWRITTEN)[:2]
    await empty_db.execute(
        "UPDATE schema_migrations SET checksum = $2 WHERE name = $1", first, min(REWRITTEN[second])
    )
    with pytest.raises(MigrationError, match=f"{first} was edited after it was applied"):
        await migrate(empty_db, folder)
    await empty_db.execute(
        "UPDATE schema_migrations SET checksum = $2 WHERE name = $1", first, min(REWRITTEN[first])
    )
    assert await migrate(empty_db, folder) == []
    rewritten = folder / second
    rewritten.write_text(rewritten.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationError, match=f"{second} was edited after it was applied"):
        await migrate(empty_db, folder)
    assert [s.name for s in await status(empty_db, folder) if s.edited] == [second]


async def test_a_database_that_applied_the_former_texts_starts_and_ends_with_the_live_functions(
    empty_db: asyncpg.Connection,
) -> None:
    """A database migrated before the copies of the check-in function were removed from
    the migrations: each rewritten file recorded with its former checksum, an older
    definition of the function in place (here the live one without its plan settings)
    and no function file applied yet."""
    await migrate(empty_db)
    for name, former in REWRITTEN.items():
        await empty_db.execute(
            "UPDATE schema_migrations SET checksum = $2 WHERE name = $1", name, min(former)
        )
    await empty_db.execute("DELETE FROM schema_functions")
    live = (MIGRATIONS_DIR / "functions" / "citybots_check_in.sql").read_text()
    older = live.replace("SET enable_seqscan = off\nSET enable_bitmapscan = off\n", "")
    assert older != live
    await empty_db.execute(older)
    assert await _definitions(empty_db) != await _as_the_files_define_them(empty_db)

    assert await migrate(empty_db) == [f"functions/{p.name}" for p in FUNCTION_FILES]
    assert not any(s.edited for s in await status(empty_db))
    assert await _definitions(empty_db) == await _as_the_files_define_them(empty_db)
    assert await migrate(empty_db) == []


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


async def test_after_the_migrations_each_function_is_the_one_its_file_defines(
    empty_db: asyncpg.Connection, tmp_path: Path
) -> None:
    """The migrations alone no longer define the check-in function (their copies of it were
    removed, see REWRITTEN): its file does, applied after them. A fresh database and one
    upgraded migration by migration end with each function exactly as its file defines it."""
    folder = _copy_migrations(tmp_path)  # no functions folder
    await migrate(empty_db, folder)
    assert (await _definitions(empty_db))["citybots_check_in"] is None
    assert await migrate(empty_db) == [f"functions/{p.name}" for p in FUNCTION_FILES]
    assert None not in (await _definitions(empty_db)).values()
    assert await _definitions(empty_db) == await _as_the_files_define_them(empty_db)
