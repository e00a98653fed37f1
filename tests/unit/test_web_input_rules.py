"""The web app's small input rules: where a redirect may go, row ids, JSON depth, the
login throttle's delays and the import report's cap on listed rows."""

import json
from pathlib import Path

import pytest

from admin.panel import local_path
from services import registry_rows
from services.login_throttle import ACCOUNT_FREE, MAX_DELAY, delay_after
from services.registry_rows import ImportReport, Rejected
from services.validation import is_bigint, loads_json, parse_row_id


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example/",
        "/\x0b/x",
        "//evil.example",
        "/\\evil.example",
        "/a\\b",
        "https://evil.example/",
        "evil.example",
        "/\n/evil.example",
        "/ /evil.example",
        "/\x7f",
        "/\x85/evil.example",
        "",
    ],
)
def test_a_redirect_target_that_is_not_a_local_path_becomes_the_home_page(target: str) -> None:
    assert local_path(target) == "/"


@pytest.mark.parametrize("target", ["/", "/model", "/venues?q=a%20b&page=2", "/a/b#c"])
def test_a_local_path_is_kept(target: str) -> None:
    assert local_path(target) == target


def test_row_ids_beyond_bigint_or_not_ascii_digits_are_refused() -> None:
    assert parse_row_id("12") == 12
    assert parse_row_id(" 999999999999999999 ") == 999999999999999999
    assert parse_row_id("12345678901234567890") is None
    assert parse_row_id("١٢") is None  # Arabic-Indic digits
    assert parse_row_id("-1") is None
    assert is_bigint(2**63 - 1)
    assert not is_bigint(2**63)
    assert not is_bigint(10**30)
    assert not is_bigint(True)
    assert not is_bigint("1")


def test_json_nested_too_deep_is_refused_with_a_reason() -> None:
    assert loads_json(json.dumps([[[1]]])) == [[[1]]]
    with pytest.raises(ValueError, match="nested deeper"):
        loads_json("[" * 65 + "]" * 65)
    with pytest.raises(ValueError, match="nested deeper"):
        loads_json("[" * 100_000 + "]" * 100_000)  # past the parser's own recursion
    with pytest.raises(ValueError, match="not UTF-8"):
        loads_json(b'{"a": "\xff"}')


def test_login_delays_grow_after_the_free_failures_up_to_a_cap() -> None:
    delays = [delay_after(n, ACCOUNT_FREE).total_seconds() for n in range(ACCOUNT_FREE + 12)]
    assert delays[:ACCOUNT_FREE] == [0] * ACCOUNT_FREE
    assert delays[ACCOUNT_FREE : ACCOUNT_FREE + 4] == [1, 2, 4, 8]
    assert max(delays) == MAX_DELAY.total_seconds()
    assert delay_after(10**9, ACCOUNT_FREE) == MAX_DELAY


def test_an_import_report_lists_the_first_rejected_rows_and_counts_them_all(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(registry_rows, "REJECTED_KEPT", 100)
    report = ImportReport("pcr")
    for line in range(2, 252):
        report.reject(Rejected(line, "iin.check_digit", ["1"] * 5))
    assert report.rejected_total == 250
    assert [r.line for r in report.rejected] == list(range(2, 102))
    path = tmp_path / "rejected.csv"
    report.write_rejected(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 100 + 1
    assert "150 more rejected rows not listed" in lines[-1]
