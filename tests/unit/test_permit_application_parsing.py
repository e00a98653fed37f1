"""Application lines and CSV uploads: every bad row named by its line, nothing guessed."""

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from services.permit_applications import MAX_ITEMS, parse_csv, parse_lines, window_of
from services.validation import InvalidInput
from tests.factories import make_iin

TZ = ZoneInfo("Asia/Almaty")


def test_typed_lines_take_an_iin_a_plate_or_both_in_either_order() -> None:
    a, b = make_iin(), make_iin()
    items, bad = parse_lines([a, f"123 abc 02, {b}", "", "777 XYZ 01", f"{a}; {b}", "hello"])
    assert [(i.line, i.iin, i.plate) for i in items] == [
        (1, a, None),
        (2, b, "123ABC02"),
        (4, None, "777XYZ01"),
    ]
    assert [(x.line, x.code) for x in bad] == [(5, "apply.line_two_iins"), (6, "plate.format")]


def test_a_csv_in_windows_1251_with_semicolons_and_extra_columns_is_read() -> None:
    a = make_iin()
    data = f"ФИО;iin;plate\nИванов;{a};123 АВС 02\n".encode("cp1251")
    items, bad = parse_csv(data)
    assert bad == []
    assert (items[0].iin, items[0].plate) == (a, "123ABC02")


@pytest.mark.parametrize(
    ("content", "line", "code"),
    [
        (b"name,phone\nx,y\n", 1, "apply.csv_header"),
        (b"", 1, "apply.csv_header"),
        (b"iin\n=1+2\n", 2, "plate.format"),
        (b"iin\n" + b"9" * 10_000 + b"\n", 2, "apply.line_too_long"),
        (b'iin,plate\n"123,\n', 2, "apply.csv_broken"),
    ],
)
def test_hostile_csv_rows_are_refused_with_their_line(
    content: bytes, line: int, code: str
) -> None:
    items, bad = parse_csv(content)
    assert items == []
    assert (bad[0].line, bad[0].code) == (line, code)


def test_an_upload_is_capped() -> None:
    rows = "\n".join(make_iin() for _ in range(MAX_ITEMS + 5))
    items, bad = parse_csv(("iin\n" + rows).encode())
    assert len(items) == MAX_ITEMS
    assert bad[-1].code == "apply.too_many_lines"


def test_a_window_is_whole_days_in_the_city_and_sane() -> None:
    start, end = window_of(date(2026, 12, 1), date(2026, 12, 7), today=date(2026, 12, 1), tz=TZ)
    assert start.isoformat() == "2026-12-01T00:00:00+05:00"
    assert end.isoformat() == "2026-12-08T00:00:00+05:00"
    for first, last, code in (
        (date(2026, 11, 30), date(2026, 12, 2), "apply.window_past"),
        (date(2026, 12, 5), date(2026, 12, 2), "apply.window_backwards"),
        (date(2026, 12, 1), date(2027, 1, 1), "apply.window_too_long"),
        (date(2028, 1, 1), date(2028, 1, 2), "apply.window_far"),
        (date(9999, 12, 31), date(9999, 12, 31), "apply.window_far"),  # was OverflowError
    ):
        with pytest.raises(InvalidInput) as raised:
            window_of(first, last, today=date(2026, 12, 1), tz=TZ)
        assert raised.value.code == code
