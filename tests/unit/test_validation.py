from collections.abc import Callable
from datetime import date

import pytest

from services.validation import (
    InvalidInput,
    parse_bin,
    parse_coordinates,
    parse_iin,
    parse_phone,
    parse_plate,
)
from services.venues import VenueError, parse_auto_checkout


def _refusal(parse: Callable[..., object], *raw: object) -> str:
    """The code ``parse`` refuses ``raw`` with (it must refuse it)."""
    with pytest.raises(InvalidInput) as error:
        parse(*raw)
    return error.value.code


@pytest.mark.parametrize("iin", ["791028302728", "061211600012", "7910 2830 2728"])
def test_valid_iins_are_accepted(iin: str) -> None:
    assert parse_iin(iin).value == iin.replace(" ", "")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("900101300016", "iin.check_digit"),
        ("79102830272", "iin.length"),
        ("7910283027281", "iin.length"),
        ("79102830272a", "iin.not_digits"),
        ("７９１０２８３０２７２８", "iin.not_digits"),  # full-width digits pass str.isdigit()
        ("٧٩١٠٢٨٣٠٢٧٢٨", "iin.not_digits"),  # Arabic-Indic digits too
        ("", "iin.length"),
        ("971240001316", "bin.check_digit"),  # a typo
        ("123 ABC 99", "plate.region"),
        ("12 ABC 02", "plate.format"),
        ("", "plate.format"),
        ("ЖЖЖ 123", "plate.format"),
        ("+7 916 123 45 67", "phone.not_kazakhstan"),
        ("12345", "phone.format"),
        ("+1 202 555 0100", "phone.format"),
        ("phone", "phone.format"),
    ],
)
def test_malformed_identifiers_get_a_reason(raw: str, code: str) -> None:
    """IINs, BINs, plates and phones: the parser is the one the code names."""
    parse = {"iin": parse_iin, "bin": parse_bin, "plate": parse_plate, "phone": parse_phone}
    assert _refusal(parse[code.split(".")[0]], raw) == code


def test_an_iin_encodes_birth_date_and_sex() -> None:
    iin = parse_iin("791028302728")
    assert iin.birth_date == date(1979, 10, 28)
    assert iin.sex == "male"
    assert not iin.needs_confirmation
    assert parse_iin("061211600012").birth_date == date(2006, 12, 11)
    assert parse_iin("061211600012").sex == "female"


def _with_check_digit(body: str) -> str:
    from services.validation import _check_digit

    digit = _check_digit(body)
    assert digit is not None
    return body + str(digit)


def test_an_iin_without_a_real_date_is_accepted_but_needs_confirmation() -> None:
    iin = parse_iin(_with_check_digit("9913323000" + "1"))  # month 13, day 32
    assert iin.birth_date is None
    assert iin.needs_confirmation


def test_an_iin_whose_check_digit_would_be_ten_twice_is_invalid() -> None:
    from services.validation import _check_digit

    bodies = (f"{n:011d}" for n in range(0, 10**11, 7919))
    body = next(b for b in bodies if _check_digit(b) is None)
    for last in "0123456789":
        with pytest.raises(InvalidInput):
            parse_iin(body + last)


@pytest.mark.parametrize("bin_", ["971240001315", "940140000385", "050540004455"])
def test_real_bins_are_accepted(bin_: str) -> None:
    parsed = parse_bin(bin_)
    assert parsed.org_type == "resident"
    assert parsed.org_kind == "head_office"


@pytest.mark.parametrize(
    ("body", "code"),
    [("97134000131", "bin.month"), ("97127000131", "bin.type"), ("97124700131", "bin.kind")],
)
def test_bins_with_impossible_structure_are_refused(body: str, code: str) -> None:
    assert _refusal(parse_bin, _with_check_digit(body)) == code


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("123 ABC 02", "123ABC02"),
        ("123abc02", "123ABC02"),
        ("123 АВС 02", "123ABC02"),  # Cyrillic look-alikes
        ("777-KZ-01", "777KZ01"),
        ("A 123 BCD", "A123BCD"),
        ("а123вс", "A123BC"),
    ],
)
def test_plates_are_normalised(raw: str, normal: str) -> None:
    assert parse_plate(raw).value == normal


@pytest.mark.parametrize(
    "raw",
    ["+7 701 123 45 67", "87011234567", "77011234567", "7011234567", "+7 (701) 123-45-67"],
)
def test_kazakhstan_phones_are_normalised_to_e164(raw: str) -> None:
    assert parse_phone(raw) == "+77011234567"


def test_coordinates_from_nowhere_are_refused() -> None:
    assert parse_coordinates(43.2389, 76.8897).latitude == 43.2389
    for lat, lon, code in [
        (float("nan"), 76.0, "location.format"),
        (43.0, float("inf"), "location.format"),
        (91.0, 76.0, "location.range"),
        (43.0, -181.0, "location.range"),
        (0.0, 0.0, "location.null_island"),
    ]:
        assert _refusal(parse_coordinates, lat, lon) == code


def test_plate_corrections_fix_typos_by_position_and_never_invent_letters() -> None:
    from services.validation import plate_corrections

    assert plate_corrections("l23 A8C 2") == ["123ABC02"]
    assert plate_corrections("I23 ABC O2") == ["123ABC02"]
    assert plate_corrections("123 AB 2") == ["123AB02"]
    assert plate_corrections("123 ЗАК 02") == []  # З is a digit's look-alike, not a letter's
    assert plate_corrections("hello") == []


@pytest.mark.parametrize(
    ("typed", "minutes"),
    [("4", 240), ("1.5", 90), ("1,5", 90), (" 2:30 ", 150), ("0:15", 15), ("24", 1440)],
)
def test_an_auto_checkout_time_is_read_as_hours_or_hours_and_minutes(
    typed: str, minutes: int
) -> None:
    assert parse_auto_checkout(typed) == minutes


@pytest.mark.parametrize("typed", ["0:14", "0.2", "24:01", "25", "90 min", "", "2:75", "٣"])
def test_an_auto_checkout_time_out_of_bounds_or_unreadable_is_refused(typed: str) -> None:
    with pytest.raises(VenueError):
        parse_auto_checkout(typed)
