"""Which PostgreSQL client programs a backup uses, and how the password reaches them."""

from __future__ import annotations

from pathlib import Path

import pytest

from citybots.pg_tools import BackupError, find_tools, target


def _programs(folder: Path, version: str) -> Path:
    folder.mkdir()
    for name in ("pg_dump", "pg_restore", "psql"):
        program = folder / name
        program.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {version}'\n")
        program.chmod(0o755)
    return folder


def test_the_password_goes_in_the_environment_never_on_the_command_line() -> None:
    where = target("postgresql://citybots:s3cr%40t%20pw@db.internal:5433/city?sslmode=require")
    assert "s3cr" not in where.url
    assert where.url == "postgresql://citybots@db.internal:5433/city?sslmode=require"
    assert where.env("citybots-backup")["PGPASSWORD"] == "s3cr@t pw"
    assert where.label == "database 'city' at db.internal:5433"
    in_query = target("postgresql://citybots@db/city?password=hunter22&sslmode=verify-full")
    assert "hunter22" not in in_query.url
    assert in_query.env("x")["PGPASSWORD"] == "hunter22"
    assert target("postgresql://postgres@127.0.0.1:5432/citybots").password is None


def test_a_url_that_is_not_postgresql_is_refused() -> None:
    with pytest.raises(BackupError, match="postgresql://"):
        target("mysql://root@localhost/city")


def test_the_first_client_as_new_as_the_server_is_used(tmp_path: Path) -> None:
    wheel = _programs(tmp_path / "wheel", "18.6")
    system = _programs(tmp_path / "system", "19.1")
    assert find_tools(16, [wheel, system]).folder == wheel  # older servers: the wheel's
    assert find_tools(18, [wheel, system]).folder == wheel
    assert find_tools(19, [wheel, system]).folder == system  # a newer server: PATH's


def test_a_server_newer_than_every_client_is_refused_naming_what_was_found(
    tmp_path: Path,
) -> None:
    wheel = _programs(tmp_path / "wheel", "18.6")
    with pytest.raises(BackupError, match="PostgreSQL 20") as refusal:
        find_tools(20, [wheel, tmp_path / "nowhere"])
    assert f"18 in {wheel}" in str(refusal.value)
    assert "postgresql-client-20" in str(refusal.value)
