"""Validation of identifiers that come from outside, in one place.

Every failure raises :class:`InvalidInput` with a stable ``code`` (for example
``iin.check_digit``); the flows turn that code into a message in the person's
language through the catalogue key ``errors.<code>``.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.errors import Refusal

_TWELVE_DIGITS = re.compile(r"[0-9]{12}")
_FIRST_WEIGHTS = tuple(range(1, 12))
_SECOND_WEIGHTS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


class InvalidInput(Refusal, ValueError):
    """Input from outside that breaks a hard rule; ``code`` names the rule."""


def _check_digit(digits: str) -> int | None:
    """The check digit of an 11-digit IIN/BIN body, or None when none exists."""
    values = [ord(c) - 48 for c in digits[:11]]
    for weights in (_FIRST_WEIGHTS, _SECOND_WEIGHTS):
        remainder = sum(map(operator.mul, values, weights)) % 11
        if remainder != 10:
            return remainder
    return None


def with_check_digit(body: str) -> str | None:
    """An 11-digit IIN/BIN body with its check digit appended, or None when the body has
    none (a made-up number for demo data and benchmarks)."""
    digit = _check_digit(body)
    return None if digit is None else body + str(digit)


def _twelve_digits(raw: str, kind: str) -> str:
    if len(raw) == 12 and raw.isascii() and raw.isdigit():  # the common case, fast
        if _check_digit(raw) != ord(raw[11]) - 48:
            raise InvalidInput(f"{kind}.check_digit")
        return raw
    text = re.sub(r"[\s-]", "", raw)
    if not text:
        raise InvalidInput(f"{kind}.length")
    if not text.isascii() or not text.isdigit():
        raise InvalidInput(f"{kind}.not_digits")
    if not _TWELVE_DIGITS.fullmatch(text):
        raise InvalidInput(f"{kind}.length")
    if _check_digit(text) != int(text[11]):
        raise InvalidInput(f"{kind}.check_digit")
    return text


@dataclass(frozen=True, slots=True)
class Iin:
    """A 12-digit IIN whose check digit holds.

    ``birth_date`` and ``sex`` are what the number encodes when it encodes them;
    ``needs_confirmation`` is set when the date or the century digit is not
    plausible. That is a soft rule: since 2013 an IIN need not encode a birth
    date, so the person is asked to confirm, never refused on it alone.
    """

    value: str
    birth_date: date | None
    sex: str | None
    needs_confirmation: bool

    def __str__(self) -> str:
        return self.value


_CENTURIES = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}


def check_iin(raw: str) -> str:
    """The IIN's 12 digits if its hard rules hold (for bulk imports: no date decoding)."""
    return _twelve_digits(raw, "iin")


def parse_iin(raw: str, *, today: date | None = None) -> Iin:
    """Validate an IIN: 12 ASCII digits and a correct check digit (hard rules)."""
    text = _twelve_digits(raw, "iin")
    century_digit = int(text[6])
    century = _CENTURIES.get(century_digit)
    birth: date | None = None
    if century is not None:
        try:
            birth = date(century + int(text[0:2]), int(text[2:4]), int(text[4:6]))
        except ValueError:
            birth = None
    if birth is not None and birth > (today or date.today()):
        birth = None
    sex = None if century is None else ("male" if century_digit % 2 else "female")
    return Iin(text, birth, sex, needs_confirmation=birth is None)


_BIN_TYPES = {"4": "resident", "5": "non_resident", "6": "joint_venture_of_entrepreneur"}
_BIN_KINDS = {"0": "head_office", "1": "branch", "2": "representative_office", "3": "peasant_farm"}


@dataclass(frozen=True, slots=True)
class Bin:
    """A 12-digit business identification number: YYMM, type, kind, serial, check."""

    value: str
    registered_year: int
    registered_month: int
    org_type: str
    org_kind: str

    def __str__(self) -> str:
        return self.value


def parse_bin(raw: str) -> Bin:
    """Validate a BIN: check digit, a real registration month, known type and kind."""
    text = _twelve_digits(raw, "bin")
    month = int(text[2:4])
    if not 1 <= month <= 12:
        raise InvalidInput("bin.month")
    if text[4] not in _BIN_TYPES:
        raise InvalidInput("bin.type")
    if text[5] not in _BIN_KINDS:
        raise InvalidInput("bin.kind")
    year = int(text[0:2])
    year += 2000 if year <= date.today().year % 100 else 1900
    return Bin(text, year, month, _BIN_TYPES[text[4]], _BIN_KINDS[text[5]])


_LOOKALIKES = str.maketrans("АВЕКМНОРСТУХІ", "ABEKMHOPCTYXI")
_PLATE_CURRENT = re.compile(r"(?P<digits>[0-9]{3})(?P<letters>[A-Z]{2,3})(?P<region>[0-9]{2})")
_PLATE_1993 = re.compile(r"(?P<region>[A-Z])(?P<digits>[0-9]{3})(?P<letters>[A-Z]{2,3})")
KZ_REGION_CODES = frozenset(f"{n:02d}" for n in range(1, 21))


@dataclass(frozen=True, slots=True)
class Plate:
    """A Kazakhstan car plate, normalised: no spaces, Latin capitals."""

    value: str
    region: str
    style: str


def parse_plate(raw: str) -> Plate:
    """Normalise a plate: fold case, spacing and Cyrillic look-alike letters.

    Accepts the current format (``123 ABC 02``: three digits, two or three
    letters, a region code 01-20) and the 1993 format (``A 123 BCD``: a
    region letter, three digits, two or three letters).
    """
    text = re.sub(r"[\s\-_.]", "", raw.upper()).translate(_LOOKALIKES)
    if not text or len(text) > 10:
        raise InvalidInput("plate.format")
    current = _PLATE_CURRENT.fullmatch(text)
    if current:
        if current["region"] not in KZ_REGION_CODES:
            raise InvalidInput("plate.region")
        return Plate(text, current["region"], "current")
    old = _PLATE_1993.fullmatch(text)
    if old:
        return Plate(text, old["region"], "1993")
    raise InvalidInput("plate.format")


# Hand-typed plates confuse letters and digits that look alike; each is put back only
# where the format wants the other kind (a digit position never takes a letter).
_AS_DIGIT = str.maketrans("OQDILZSBGЗ", "0001125863")
_AS_LETTER = str.maketrans("0182563", "OIBZSGZ")


def plate_corrections(raw: str) -> list[str]:
    """Well-formed plates that ``raw`` is probably a typo of: look-alike letters and
    digits swapped back by position, and a one-digit region given its leading zero.
    Each candidate is itself a valid plate; a match on one is reported as loose."""
    text = re.sub(r"[^0-9A-ZА-ЯЁІӘҒҚҢӨҰҮҺ]", "", raw.upper()).translate(_LOOKALIKES)
    candidates: list[str] = []
    for letters in (3, 2):
        for region in (2, 1):
            if len(text) != 3 + letters + region:
                continue
            digits_part = text[:3].translate(_AS_DIGIT)
            letters_part = text[3 : 3 + letters].translate(_AS_LETTER)
            region_part = text[3 + letters :].translate(_AS_DIGIT).zfill(2)
            candidates.append(digits_part + letters_part + region_part)
    for letters in (3, 2):
        if len(text) == 4 + letters:
            candidates.append(
                text[0].translate(_AS_LETTER)
                + text[1:4].translate(_AS_DIGIT)
                + text[4:].translate(_AS_LETTER)
            )
    plates: list[str] = []
    for candidate in candidates:
        try:
            plate = parse_plate(candidate).value
        except InvalidInput:
            continue
        if plate not in plates:
            plates.append(plate)
    return plates


def parse_phone(raw: str) -> str:
    """Normalise a Kazakhstan number (+7 7xx ...) to E.164, ``+77xxxxxxxxx``."""
    text = re.sub(r"[\s\-()]", "", raw)
    if text.startswith("+"):
        text = text[1:]
    if not text.isascii() or not text.isdigit():
        raise InvalidInput("phone.format")
    if len(text) == 11 and text[0] == "8":
        text = "7" + text[1:]
    elif len(text) == 10:
        text = "7" + text
    if len(text) != 11 or text[0] != "7":
        raise InvalidInput("phone.format")
    if text[1] != "7":
        raise InvalidInput("phone.not_kazakhstan")
    return "+" + text


_DEEP_LINK_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_deep_link_payload(raw: str) -> bool:
    """What Telegram carries in ``?start=``: 1-64 of ``A-Z a-z 0-9 _ -``. Every token we
    issue (venue QR codes, invites, checkpoints) has this shape, so anything else typed
    after ``/start`` is no token of ours and never reaches a query."""
    return _DEEP_LINK_PAYLOAD.fullmatch(raw) is not None


@dataclass(frozen=True, slots=True)
class Coordinates:
    latitude: float
    longitude: float


def parse_coordinates(latitude: float, longitude: float) -> Coordinates:
    """Reject coordinates no phone could have reported: not finite, out of range, (0, 0)."""
    try:
        lat, lon = float(latitude), float(longitude)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond a float
        raise InvalidInput("location.format") from None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise InvalidInput("location.format")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise InvalidInput("location.range")
    if lat == 0.0 and lon == 0.0:
        raise InvalidInput("location.null_island")
    return Coordinates(lat, lon)


BIGINT_MAX = 2**63 - 1  # PostgreSQL's bigint, the type of every row id and Telegram id
JSON_MAX_DEPTH = 64


def parse_row_id(raw: str) -> int | None:
    """A row id typed or sent as text: 1 to 18 ASCII digits (every such number fits a
    bigint); None for anything else."""
    raw = raw.strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        return None
    return int(raw)


def is_bigint(value: object) -> bool:
    """An integer PostgreSQL's bigint can hold (a JSON bool is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= BIGINT_MAX


def json_depth_ok(value: object, max_depth: int = JSON_MAX_DEPTH) -> bool:
    """False when arrays and objects nest deeper than ``max_depth`` (walked without
    recursion, so that a hostile document cannot exhaust the stack here either)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def loads_json(raw: bytes | str, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """Parse JSON from outside: ValueError (with a reason) for what is not JSON, is not
    UTF-8, or nests deeper than ``max_depth``."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8") from None
    if not json_depth_ok(value, max_depth):
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return value
