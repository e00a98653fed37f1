"""Files holding personal data: a 0700 folder, 0600 files, nothing half-written left
behind, a killed process's temporaries removed at start, old reports removed."""

import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from services.private_files import (
    TEMP_PREFIX,
    private_file,
    private_folder,
    read_or_create_secret,
    remove_leftovers,
    remove_older_than,
    temporary_file,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_folder_is_made_and_set_to_0700_even_when_it_existed(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    assert _mode(private_folder(folder)) == 0o700
    assert _mode(private_folder(tmp_path / "new" / "reports")) == 0o700


class ImportFailed(Exception):
    pass


def _import_that_fails(folder: Path, seen: list[int]) -> None:
    with temporary_file(folder, ".csv") as path:
        seen.append(_mode(path))
        path.write_text("791028302728")
        raise ImportFailed


def _report_that_fails(path: Path) -> None:
    with private_file(path) as out:
        out.write("half")
        raise ImportFailed


def test_a_temporary_file_is_0600_whatever_the_umask_and_gone_after_an_error(
    tmp_path: Path,
) -> None:
    seen: list[int] = []
    old = os.umask(0)
    try:
        with pytest.raises(ImportFailed):
            _import_that_fails(tmp_path / "r", seen)
    finally:
        os.umask(old)
    assert seen == [0o600]
    assert list((tmp_path / "r").iterdir()) == []


def test_a_private_file_appears_whole_and_0600_or_not_at_all(tmp_path: Path) -> None:
    report = tmp_path / "reports" / "a.rejected.csv"
    old = os.umask(0o022)
    try:
        with private_file(report, newline="", encoding="utf-8") as out:
            out.write("line,iin\n")
            assert not report.exists()
        with pytest.raises(ImportFailed):
            _report_that_fails(tmp_path / "reports" / "b.csv")
    finally:
        os.umask(old)
    assert report.read_text() == "line,iin\n"
    assert _mode(report) == 0o600
    assert [p.name for p in report.parent.iterdir()] == ["a.rejected.csv"]


def test_a_private_file_leaves_an_existing_folder_as_it_is(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    with private_file(tmp_path / "results.rejected.csv") as out:
        out.write("x")
    assert _mode(tmp_path) == 0o755
    assert _mode(tmp_path / "results.rejected.csv") == 0o600


def test_a_secret_is_made_once_0600_and_read_back(tmp_path: Path) -> None:
    first = read_or_create_secret(tmp_path / "s" / "pw")
    assert len(first) >= 32
    assert read_or_create_secret(tmp_path / "s" / "pw") == first
    assert _mode(tmp_path / "s" / "pw") == 0o600
    assert _mode(tmp_path / "s") == 0o700


def test_leftovers_of_a_killed_process_go_and_a_live_ones_stay(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = tmp_path / f"{TEMP_PREFIX}{gone.stdout.strip()}-abcd.csv"
    dead.write_text("400000 rows")
    live = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-abcd.csv"
    live.write_text("in progress")
    report = tmp_path / "kept.rejected.csv"
    report.write_text("x")
    assert remove_leftovers(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, report.name])


def test_reports_older_than_the_retention_are_removed(tmp_path: Path) -> None:
    old, new = tmp_path / "old.rejected.csv", tmp_path / "new.rejected.csv"
    old.write_text("x")
    new.write_text("y")
    now = new.stat().st_mtime
    os.utime(old, (now - 8 * 86400, now - 8 * 86400))
    assert remove_older_than(tmp_path, timedelta(days=7), now=now) == 1
    assert [p.name for p in tmp_path.iterdir()] == [new.name]
    assert remove_older_than(tmp_path / "missing", timedelta(days=7)) == 0
