"""Validation at the edge, on arbitrary input: every identifier parser either returns a
normalised value that obeys its rules or raises InvalidInput with a code the catalogue
explains, never anything else."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from hypothesis import example, given
from hypothesis import strategies as st

from presentation.i18n import LANGUAGES
from presentation.keys import input_error
from services.validation import (
    InvalidInput,
    _check_digit,
    check_iin,
    parse_bin,
    parse_coordinates,
    parse_iin,
    parse_phone,
    parse_plate,
    plate_corrections,
)
from tests.property import cases
from tests.property.strategies import hostile_text

T = TypeVar("T")
DIGITS = st.text(alphabet="0123456789", min_size=11, max_size=11)
NEAR_IDS = st.one_of(
    hostile_text(max_size=40),
    st.text(alphabet="0123456789 -\t٠١٢３４\u00a0", min_size=0, max_size=16),
    DIGITS.map(lambda body: body + str(_check_digit(body) or 0)),
)


def _explained(error: InvalidInput) -> None:
    for lang in LANGUAGES:
        message = input_error(lang, error.code)
        assert message, (lang, error.code)
        assert not message.startswith("errors."), (lang, error.code)


def _parsed_or_refused(
    what: str, parse: Callable[[str], T], raw: str, codes: tuple[str, ...]
) -> T | None:
    """``parse(raw)`` (a case of ``what``), or None when it refused ``raw`` with one of
    ``codes`` (one ending with "." is a prefix) and a message in every language."""
    cases.tick(f"validation: {what}")
    try:
        return parse(raw)
    except InvalidInput as error:
        assert any(
            error.code == code or (code.endswith(".") and error.code.startswith(code))
            for code in codes
        ), error.code
        _explained(error)
        return None


@cases.examples(ci=300)
@given(NEAR_IDS)
@example("791028302728")
@example("900101300016")
@example("７９１０２８３０２７２８")
def test_an_iin_is_twelve_ascii_digits_with_a_right_check_digit_or_refused(raw: str) -> None:
    iin = _parsed_or_refused(
        "IIN", parse_iin, raw, ("iin.length", "iin.not_digits", "iin.check_digit")
    )
    if iin is None:
        return
    assert len(iin.value) == 12
    assert iin.value.isascii()
    assert iin.value.isdigit()
    assert _check_digit(iin.value) == int(iin.value[11])
    assert check_iin(raw) == iin.value
    assert iin.needs_confirmation == (iin.birth_date is None)


@cases.examples(ci=300)
@given(NEAR_IDS)
@example("971240001315")
def test_a_bin_is_refused_with_a_reason_or_decoded(raw: str) -> None:
    found = _parsed_or_refused("BIN", parse_bin, raw, ("bin.",))
    if found is None:
        return
    assert 1 <= found.registered_month <= 12
    assert found.value[4] in "456"
    assert found.value[5] in "0123"


@cases.examples(ci=300)
@given(
    st.one_of(
        hostile_text(max_size=30),
        st.from_regex(r"\A[+]?[78]?[ (]?7[0-9]{2}[) -]?[0-9]{3}[ -]?[0-9]{2}[ -]?[0-9]{2}\Z"),
    )
)
@example("+7 (701) 234-56-78")
@example("+٧٧٠١٢٣٤٥٦٧٨")
def test_a_phone_becomes_e164_or_is_refused(raw: str) -> None:
    phone = _parsed_or_refused("phone", parse_phone, raw, ("phone.format", "phone.not_kazakhstan"))
    if phone is None:
        return
    assert phone.startswith("+77")
    assert len(phone) == 12
    assert phone[1:].isdigit()
    assert phone.isascii()


@cases.examples(ci=300)
@given(
    st.one_of(
        hostile_text(max_size=20),
        st.from_regex(r"\A[0-9OIЗ]{3} ?[A-ZАВЕКМНОРСТУХ0-9]{2,3} ?[0-9OI]{1,2}\Z"),
        st.from_regex(r"\A[A-Z] ?[0-9]{3} ?[A-Z]{2,3}\Z"),
    )
)
@example("123 ABC 02")
@example("ß" * 10)
def test_a_plate_is_normalised_or_refused_and_corrections_are_valid_plates(raw: str) -> None:
    plate = _parsed_or_refused("plate", parse_plate, raw, ("plate.format", "plate.region"))
    if plate is not None:
        assert plate.value.isascii()
        assert plate.value.isalnum()
        assert plate.value.isupper()
        assert parse_plate(plate.value) == plate
    for corrected in plate_corrections(raw):
        assert parse_plate(corrected).value == corrected


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([0.0, -0.0, 90.0, -90.0, 180.0, -180.0, 90.0000001, 1e308]),
)


@cases.examples(ci=300)
@given(NUMBERS, NUMBERS)
@example(math.nan, 76.9)
@example(43.2, math.inf)
@example(0.0, 0.0)
def test_coordinates_are_finite_in_range_and_not_null_island_or_refused(
    latitude: float, longitude: float
) -> None:
    cases.tick("validation: coordinates")
    try:
        point = parse_coordinates(latitude, longitude)
    except InvalidInput as error:
        assert error.code in ("location.format", "location.range", "location.null_island")
        _explained(error)
        return
    assert math.isfinite(point.latitude)
    assert math.isfinite(point.longitude)
    assert -90 <= point.latitude <= 90
    assert -180 <= point.longitude <= 180
    assert (point.latitude, point.longitude) != (0.0, 0.0)
