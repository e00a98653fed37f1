"""The `citybots` command as a person runs it: a real process, real servers."""

import os
import subprocess
import sys
from pathlib import Path

import asyncpg


def _citybots(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "citybots.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **env},
        cwd=cwd,
        check=False,
    )


def test_a_bad_setting_stops_the_start_with_one_line_naming_it(tmp_path: Path) -> None:
    result = _citybots("run", env={"ADMIN_PORT": "eighty"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "citybots: bad setting ADMIN_PORT: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_db_migrate_and_status(database_url: str, redis_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    migrated = _citybots("db", "migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.strip() == "database is up to date"
    status = _citybots("db", "status", env=env, cwd=tmp_path)
    assert status.returncode == 0
    assert "0001_core.sql" in status.stdout
    assert "pending" not in status.stdout


async def test_demo_data_loads_an_obviously_labelled_city_once(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    first = _citybots("demo-data", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    conn = await asyncpg.connect(database_url)
    try:
        counts = [
            await conn.fetchval(f"SELECT count(*) FROM {t}")  # noqa: S608
            for t in ("venues", "pcr_results", "zones", "doctors")
        ]
        second = _citybots("demo-data", env=env, cwd=tmp_path)
        assert second.returncode == 0
        again = [
            await conn.fetchval(f"SELECT count(*) FROM {t}")  # noqa: S608
            for t in ("venues", "pcr_results", "zones", "doctors")
        ]
        assert counts == again
        assert all(c > 0 for c in counts)
        names = await conn.fetch(
            "SELECT name FROM venues WHERE demo_key IS NOT NULL "
            "UNION ALL SELECT name FROM zones WHERE demo_key IS NOT NULL"
        )
        assert all(r["name"].startswith("[DEMO] ") for r in names)
        iins = await conn.fetch("SELECT iin FROM pcr_results WHERE demo_key IS NOT NULL")
        assert all(r["iin"][6] in "12" for r in iins)  # births in the 1800s
        assert "/start in_demo_central-market" in first.stdout
        demo_codes = await conn.fetchval(
            "SELECT count(*) FROM venue_codes "
            "WHERE token LIKE 'in_demo%' OR token LIKE 'out_demo%'"
        )
        assert demo_codes == 6
    finally:
        await conn.close()


def test_check_reports_what_is_reachable(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    result = _citybots("check", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"status": "ok"' in result.stdout
    assert '"sandbox_bots"' in result.stdout


def test_import_reports_progress_rejected_rows_and_is_idempotent(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    from tests.factories import make_iin

    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    good = make_iin()
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text(
        "iin,registered_at,isolation_end\n"
        f"{good},2026-11-01 10:00,2026-11-15 10:00\n"
        "123,2026-11-01 10:00,2026-11-15 10:00\n"
    )
    first = _citybots("import", "contacts", str(csv_file), env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "2 rows: 1 added, 0 already known, 1 rejected" in first.stdout
    assert "importing contacts.csv" in first.stderr
    rejected = (tmp_path / "contacts.rejected.csv").read_text().splitlines()
    assert rejected[1].startswith("3,iin.length,")
    second = _citybots("import", "contacts", str(csv_file), env=env, cwd=tmp_path)
    assert "2 rows: 0 added, 1 already known, 1 rejected" in second.stdout
    missing = _citybots("import", "pcr", str(tmp_path / "nope.csv"), env=env, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr


def test_admin_invites_a_doctor(database_url: str, redis_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    result = _citybots(
        "admin", "invite-doctor", "--district", "Medeu", "--duty", env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "https://t.me/citybots_doctor_bot?start=doc_" in result.stdout
    assert "Medeu (on the duty list)" in result.stdout
    blank = _citybots("admin", "invite-doctor", "--district", " ", env=env, cwd=tmp_path)
    assert blank.returncode == 1
    assert "district" in blank.stderr
