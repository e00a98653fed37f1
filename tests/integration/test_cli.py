"""The `citybots` command as a person runs it: a real process, real servers."""

import json
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from services.feeds.specs import FEEDS
from services.validation import parse_bin
from tests.commands import run_citybots
from tests.conftest import AUDIT_CHAIN_KEY


def _citybots(
    *args: str, env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A command as the deployment runs it: with its audit chain key, unless ``env`` says."""
    env = {**os.environ, "AUDIT_CHAIN_KEY": AUDIT_CHAIN_KEY, **env}
    return run_citybots(*args, env=env, cwd=cwd, stdin=stdin)


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
        tables = (
            "venues", "pcr_results", "zones", "doctors", "organisations", "checkpoints",
            "passings", "permits", "officers", "hotline_calls", "hotline_unanswered",
            "daily_indicators", "panel_users", "registered_contacts", "brigades",
            "brigade_tasks", "ambulance_calls", "ambulance_clusters",
        )  # fmt: skip
        counts = [
            await conn.fetchval(f"SELECT count(*) FROM {t}")  # noqa: S608
            for t in tables
        ]
        second = _citybots("demo-data", env=env, cwd=tmp_path)
        assert second.returncode == 0
        again = [
            await conn.fetchval(f"SELECT count(*) FROM {t}")  # noqa: S608
            for t in tables
        ]
        assert counts == again
        assert "shown once" in first.stdout
        assert "shown once" not in second.stdout
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

        # a BIN to register a venue with, on the register; an organisation for permits;
        # a checkpoint with an officer's invite (staff bot), an agent's (agent bot)
        bins = re.findall(r"BIN\s+(\d{12})", first.stdout)
        assert len(bins) == 2
        for bin_ in bins:
            assert parse_bin(bin_).value == bin_
            assert await conn.fetchval("SELECT true FROM organisations WHERE bin = $1", bin_)
        assert await conn.fetchval(
            "SELECT permitted FROM permit_organisations WHERE bin = $1", bins[1]
        )
        assert "https://t.me/citybots_staff_bot?start=off_" in first.stdout
        assert "https://t.me/citybots_agent_bot?start=off_" in first.stdout
        assert (
            await conn.fetchval("SELECT role FROM panel_users WHERE demo_key IS NOT NULL")
            == "permits_officer"
        )
        assert await conn.fetchval("SELECT count(*) FROM permits WHERE demo_key IS NOT NULL")
        # the situation centre has a history: most of the last 60 days have cases and calls
        for metric in ("new_cases", "pcr_tests", "calls_topic", "passings"):
            days = await conn.fetchval(
                "SELECT count(DISTINCT day) FROM rollup_daily WHERE metric = $1"
                " AND day >= current_date - 60 AND value > 0",
                metric,
            )
            assert days >= (50 if metric != "passings" else 10), metric
        # a month of every feed (issue 22 §1), its names marked as the demo's
        feeds = await conn.fetch(
            "SELECT feed, count(DISTINCT day) AS days, bool_and(keys[array_length(keys, 1)]"
            " LIKE '[DEMO] %' OR feed IN ('medical', 'facilities')) AS marked"  # by district
            " FROM feed_records WHERE source = 'demo' GROUP BY feed"
        )
        assert {r["feed"]: r["days"] for r in feeds} == dict.fromkeys(FEEDS, 30)
        assert all(r["marked"] for r in feeds)

        # the field systems: a day's tasks of two brigades, a week of calls, two clusters
        clusters = await conn.fetchval(
            "SELECT count(DISTINCT cluster_id) FROM ambulance_calls WHERE demo_key IS NOT NULL"
        )
        assert clusters == 2
        assert await conn.fetchval(
            "SELECT coverage > 0.9 FROM brigade_tasks WHERE state = 'done' "
            "AND created_by = 'demo-data'"
        )

        removed = _citybots("demo-data", "--remove", env=env, cwd=tmp_path)
        assert removed.returncode == 0, removed.stderr
        assert not await conn.fetchval(
            "SELECT count(*) FROM brigade_tasks WHERE created_by = 'demo-data'"
        )
        assert not await conn.fetchval(
            "SELECT count(*) FROM ambulance_clusters c WHERE NOT EXISTS "
            "(SELECT 1 FROM ambulance_calls a WHERE a.cluster_id = c.id)"
        )
        for table in tables:
            if table in (
                "organisations",
                "daily_indicators",
                "brigade_tasks",
                "ambulance_clusters",
            ):
                continue
            left = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE demo_key IS NOT NULL"  # noqa: S608
            )
            assert left == 0, table
        assert not await conn.fetchval(
            "SELECT count(*) FROM daily_indicators WHERE entered_by = 'demo-data'"
        )
        assert not await conn.fetchval("SELECT count(*) FROM feed_records WHERE source = 'demo'")
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


@pytest.mark.parametrize(
    ("role", "bot"), [("agent", "agent"), ("police", "staff"), ("checkpoint", "staff")]
)
def test_an_officers_invite_links_to_the_bot_of_their_role(
    role: str, bot: str, database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    result = _citybots("admin", "invite-officer", "--role", role, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"https://t.me/citybots_{bot}_bot?start=off_" in result.stdout
    assert f"to the {bot} bot" in result.stdout


def test_model_run_prints_json_and_draws_a_chart_of_every_scenario(tmp_path: Path) -> None:
    chart = tmp_path / "chart.png"
    result = _citybots(
        "model", "run", "--population", "20000", "--days", "150", "--replicates", "2",
        "--json", "--chart", str(chart), env={}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["population"] == 20000
    assert len(report["scenarios"]) == 6
    first = report["scenarios"][0]
    assert first["key"] == "lift-13-april"
    assert first["infected"]["p05"] <= first["infected"]["median"] <= first["infected"]["p95"]
    assert set(first) >= {"peak_infected", "peak_hospitalised", "peak_hospitalised_date"}
    assert "12 runs" in result.stderr  # progress, on standard error
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert report["chart"] == str(chart)


def test_model_run_prints_a_table_and_refuses_bad_input_clearly(tmp_path: Path) -> None:
    table = _citybots(
        "model", "run", "--population", "20000", "--days", "60", "--replicates", "1",
        "--only", "lift-13-april", "--chart", str(tmp_path / "c.png"), env={}, cwd=tmp_path,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "20,000 people, 60 days from 2020-03-13" in table.stdout
    assert "lift-13-april" in table.stdout
    assert "exit-two-steps" not in table.stdout
    unknown = _citybots("model", "run", "--only", "nope", env={}, cwd=tmp_path)
    assert unknown.returncode == 2
    assert "no scenario 'nope'" in unknown.stderr
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text(
        "model: {start: 2020-03-13, population: 100}\nscenarios:\n"
        "  - key: a\n    schedule:\n      - {from: 2020-03-13, contacts: ten, probability: 0.1}\n",
        encoding="utf-8",
    )
    refused = _citybots("model", "run", "--scenarios", str(bad_file), env={}, cwd=tmp_path)
    assert refused.returncode == 2
    assert "scenarios[0].schedule[0].contacts: must be a number" in refused.stderr
    zero = _citybots("model", "run", "--population", "0", env={}, cwd=tmp_path)
    assert zero.returncode == 2
    assert "--population must be at least 1" in zero.stderr


def test_model_run_on_the_structured_city_reports_each_district(tmp_path: Path) -> None:
    result = _citybots(
        "model", "run", "--population-kind", "structured", "--population", "30000",
        "--days", "60", "--replicates", "1", "--only", "schools-open", "--only",
        "schools-closed", "--json", "--chart", str(tmp_path / "c.png"), env={}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["population_kind"] == "structured"
    assert [s["key"] for s in report["scenarios"]] == ["schools-open", "schools-closed"]
    districts = report["scenarios"][0]["districts"]
    assert len(districts) == 8
    assert set(districts["Auezov"]) == {
        "infected", "peak_hospitalised", "peak_hospitalised_day", "deaths"
    }  # fmt: skip
    assert report["scenarios"][1]["infections_by_setting"]["school"] == 0
    table = _citybots(
        "model", "run", "--population-kind", "structured", "--population", "30000",
        "--days", "30", "--replicates", "1", "--only", "zone-alatau",
        "--chart", str(tmp_path / "d.png"), env={}, cwd=tmp_path,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "zone-alatau: by district, median (90% band)" in table.stdout
    assert "Nauryzbay" in table.stdout
    refused = _citybots("model", "run", "--only", "schools-closed", env={}, cwd=tmp_path)
    assert refused.returncode == 2
    assert "needs --population-kind structured" in refused.stderr


def test_model_calibrate_fits_a_case_series_and_names_bad_rows(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("date,cases\n2020-04-01,3\n01.04.2020,4\n2020-04-03,-1\n", encoding="utf-8")
    refused = _citybots("model", "calibrate", "--cases", str(bad), env={}, cwd=tmp_path)
    assert refused.returncode == 2
    assert "line 3" in refused.stderr
    assert "line 4" in refused.stderr
    good = tmp_path / "cases.csv"
    counts = [2, 3, 3, 5, 6, 8, 11, 13, 17, 22, 27, 35, 44, 55, 70, 86, 108, 135, 166, 205]
    good.write_text(
        "date,cases\n" + "".join(f"2020-04-{d + 1:02d},{c}\n" for d, c in enumerate(counts)),
        encoding="utf-8",
    )
    fitted = _citybots(
        "model", "calibrate", "--cases", str(good), "--population", "200000", "--json",
        env={}, cwd=tmp_path,
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr
    fit = json.loads(fitted.stdout)
    assert fit["days"] == 20
    assert fit["r"] > 1  # the series grows
    assert 0 < fit["detected"] <= 1


async def test_model_calibrate_reads_the_registrys_daily_new_cases(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.executemany(
            "INSERT INTO pcr_results (iin, sampled_at, result_at, result, laboratory)"
            " VALUES ($1, $2, $2, 'positive', 'model-test') ON CONFLICT DO NOTHING",
            [
                (f"9{day:03d}{n:08d}", datetime(2020, 5, 1, 9, tzinfo=UTC) + timedelta(days=day))
                for day in range(21)
                for n in range(day + 1)
            ],
        )
    finally:
        await conn.close()
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    fitted = _citybots(
        "model", "calibrate", "--from-registry", "--population", "100000", env=env, cwd=tmp_path
    )
    assert fitted.returncode == 0, fitted.stderr
    assert "contacts a day" in fitted.stdout


def test_admin_create_user_adds_a_panel_user_once(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}  # and the chain key
    name = f"cli-{os.getpid()}"

    def create(*args: str, password: str) -> subprocess.CompletedProcess[str]:
        return _citybots(
            "admin", "create-user", *args, env=env, cwd=tmp_path, stdin=password + "\n"
        )

    made = create(name, "--role", "analyst", "--password-stdin", password="a long password")
    assert made.returncode == 0, made.stderr
    assert f"{name} (analyst) can log in at http://" in made.stdout
    again = create(name, "--role", "analyst", "--password-stdin", password="a long password")
    assert again.returncode == 1
    assert f"there is already a user called {name}" in again.stderr
    short = create("someone-else", "--role", "admin", "--password-stdin", password="short")
    assert short.returncode == 2
    assert "at least 10 characters" in short.stderr
    weak = create("someone-else", "--role", "admin", "--password-stdin", password="1234567890")
    assert weak.returncode == 2
    assert "too easy to guess" in weak.stderr


def test_audit_verify_and_rollups_refresh_report_what_they_did(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    # With the platform's audit chain key (see _citybots), which chains the same log.
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
    verified = _citybots("audit", "verify", env=env, cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "the chain is intact" in verified.stdout
    refreshed = _citybots("rollups", "refresh", env=env, cwd=tmp_path)
    assert refreshed.returncode in (0, 1), refreshed.stderr  # 1: the platform's job was running
    assert "roll-ups:" in refreshed.stdout or "another roll-up" in refreshed.stderr
