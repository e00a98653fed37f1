"""The registers' rows: the columns each CSV kind has, why a row is rejected, parsing
and checking each row (times, IINs, BINs, phones, places), the import's report, and
reading a CSV file or its lines."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from services.ambulance_rows import COLUMNS as CALL_COLUMNS
from services.ambulance_rows import REASONS as CALL_REASONS
from services.ambulance_rows import CodeSet, check_call
from services.errors import Refusal
from services.exports import spreadsheet_safe
from services.private_files import private_file
from services.validation import (
    InvalidInput,
    check_iin,
    parse_bin,
    parse_coordinates,
    parse_phone,
)

KINDS = ("pcr", "contacts", "phones", "orgs", "pois", "ambulance")
POI_KINDS = ("pharmacy", "shop", "hotel", "hostel", "residents")
COLUMNS = {
    "pcr": ("iin", "sampled_at", "result_at", "result", "laboratory"),
    "contacts": ("iin", "registered_at", "isolation_end"),
    "phones": ("iin", "phone"),
    "orgs": ("bin", "name", "activity_code", "head_phone", "allowed"),
    "pois": ("kind", "name", "latitude", "longitude", "residents"),
    "ambulance": CALL_COLUMNS,
}
REASONS = {
    "iin.not_digits": "IIN has characters other than digits",
    "iin.length": "IIN is not 12 digits",
    "iin.check_digit": "IIN check digit is wrong",
    "phone.format": "phone number is not a number",
    "phone.not_kazakhstan": "phone number is not a Kazakhstan mobile (+7 7xx)",
    "time.format": "time is not a date and time (YYYY-MM-DD HH:MM[:SS][+HH:MM])",
    "time.future": "time is in the future",
    "time.order": "times are in the wrong order",
    "time.range": "time is not between the years 1900 and 2200",
    "result.value": "result is not positive, negative or withdrawn",
    "result.outdated": "a later result for this sample with another outcome is stored already",
    "result.nothing_to_withdraw": "no result for this sample (IIN, sample time, laboratory) "
    "is stored to withdraw",
    "laboratory.missing": "laboratory is empty or longer than 200 characters",
    "bin.not_digits": "BIN has characters other than digits",
    "bin.length": "BIN is not 12 digits",
    "bin.check_digit": "BIN check digit is wrong",
    "bin.month": "BIN digits 3-4 are not a month",
    "bin.type": "BIN digit 5 is not 4, 5 or 6",
    "bin.kind": "BIN digit 6 is not 0, 1, 2 or 3",
    "org.name": "organisation name is empty or longer than 300 characters",
    "org.activity": "activity code is empty or not digits and dots (up to 20)",
    "org.allowed": "allowed is not yes or no",
    "poi.kind": "kind is not one of " + ", ".join(POI_KINDS),
    "poi.name": "name is empty or longer than 300 characters",
    "poi.residents": "residents is not a whole number up to 999,999,999 (needed for kind "
    "residents)",
    "location.format": "latitude or longitude is not a number",
    "location.range": "latitude or longitude is out of range (is it projected, or swapped?)",
    "location.null_island": "the point (0, 0) is not a real place",
    "day.format": "day is not a date (YYYY-MM-DD)",
    "day.range": "day is in the future or before the year 2000",
    "hour.value": "hour is not a whole number from 0 to 23 (or empty for the whole day)",
    "key.missing": "a name (camera, route, hospital, item ...) is empty or longer than 200 "
    "characters",
    "key.choice": "a value is not one of those allowed (a call's line: 103, 1308 or 1406)",
    "figure.count": "a count is not a whole number from 0 to 1,000,000,000",
    "figure.amount": "an amount is not a number from 0 to 1,000,000,000,000 with at most 2 "
    "decimals",
    "operator.per_subscriber": "the file has a per-subscriber row (a subscriber's identifier, "
    "or not the aggregate's columns): operators hand over counts, never people; nothing was "
    "imported",
    "row.columns": "row does not have the expected columns",
    "row.nul": "row has a NUL character (no stored text can hold one)",
    "row.malformed": "row cannot be read as CSV (quoting, size or encoding)",
    "fhir.resource_type": "entry is not an Observation (or a Patient it references)",
    "fhir.invalid": "Observation is not valid FHIR R4",
    "fhir.code": "Observation.code is not LOINC 94500-6 (SARS-CoV-2 RNA PCR)",
    "fhir.subject": "no IIN for the patient (an identifier of type NNKAZ, on the subject "
    "or on the Patient it references)",
    "fhir.effective": "no effectiveDateTime (the sample time)",
    "fhir.issued": "no issued (the result time)",
    "fhir.status": "status is not final, amended, corrected or entered-in-error",
    "fhir.value": "no outcome: valueCodeableConcept or interpretation is not positive/detected "
    "or negative/not detected",
    **CALL_REASONS,
}
_POSITIVE = {"positive", "pos", "+", "1", "положительный", "оң"}
_NEGATIVE = {"negative", "neg", "-", "0", "отрицательный", "теріс"}
_WITHDRAWN = {"withdrawn", "entered-in-error", "entered in error", "отозван", "қате"}
WITHDRAWN = "withdrawn"
CLOCK_SKEW = timedelta(minutes=5)
REJECTED_KEPT = 100_000  # rejected rows an import report lists; the rest are only counted


@dataclass
class Rejected:
    line: int
    code: str
    raw: list[str]

    @property
    def reason(self) -> str:
        return REASONS.get(self.code, self.code)


@dataclass
class ImportReport:
    kind: str
    columns: tuple[str, ...] = ()  # a feed's columns; a register's are COLUMNS[kind]
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    corrected: int = 0
    withdrawn: int = 0
    rejected: list[Rejected] = field(default_factory=list)  # the first REJECTED_KEPT
    rejected_total: int = 0
    seconds: float = 0.0
    positives: list[int] = field(default_factory=list)

    def reject(self, item: Rejected) -> None:
        """Count a rejected row; list it while fewer than REJECTED_KEPT are listed (a file
        of bad rows must not grow a report as large as itself in memory and on disk)."""
        self.rejected_total += 1
        if len(self.rejected) < REJECTED_KEPT:
            self.rejected.append(item)

    def as_dict(self) -> dict[str, Any]:
        """The counts, with the rejected rows listed in place of their count."""
        listed = [{"line": r.line, "code": r.code, "reason": r.reason} for r in self.rejected]
        return {"kind": self.kind, **self.counts(), "rejected": listed}

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "corrected": self.corrected,
            "withdrawn": self.withdrawn,
            "rejected": self.rejected_total,
        }

    def write_rejected(self, path: Path) -> None:
        """The rejected rows as CSV (line, reason, the row), safe to open in a spreadsheet;
        a private file (0600, in a 0700 folder, whole or not at all)."""
        with private_file(path, newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "code", "reason", *(self.columns or COLUMNS[self.kind])])
            for row in self.rejected:
                writer.writerow(
                    [row.line, row.code, row.reason, *(spreadsheet_safe(c) for c in row.raw)]
                )
            if self.rejected_total > len(self.rejected):
                more = self.rejected_total - len(self.rejected)
                writer.writerow(
                    ["", "report.truncated", f"{more:,} more rejected rows not listed"]
                )


class RowError(Refusal):
    """A row refused; ``code`` names the rule it breaks."""


_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LAST = datetime(2200, 1, 1, tzinfo=UTC)


def _moment(raw: str, tz: ZoneInfo, *, too_late: str = "time.range") -> datetime:
    """An ISO 8601 time (without an offset, the city's time) that PostgreSQL can store:
    years 1 and 9999 with an offset fall outside what a timestamptz converts."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise RowError("time.format") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    if value.year >= _LAST.year or (
        value.year > _EARLIEST.year and value.astimezone(UTC) >= _LAST
    ):
        raise RowError(too_late)
    if value.year < _EARLIEST.year or value.astimezone(UTC) < _EARLIEST:
        raise RowError("time.range")
    return value


def parse_time(raw: str, tz: ZoneInfo, latest: datetime) -> datetime:
    """An ISO 8601 time no later than ``latest``; without an offset, the city's time."""
    value = _moment(raw, tz, too_late="time.future")
    if value > latest:
        raise RowError("time.future")
    return value


def _iin(raw: str) -> str:
    try:
        return check_iin(raw)
    except InvalidInput as error:
        raise RowError(error.code) from None


def _pcr_row(fields: list[str], tz: ZoneInfo, latest: datetime) -> tuple[Any, ...]:
    iin, sampled_raw, result_raw_time, result_raw, laboratory = fields
    sampled = parse_time(sampled_raw.strip(), tz, latest)
    result_at = parse_time(result_raw_time.strip(), tz, latest)
    if result_at < sampled:
        raise RowError("time.order")
    verdict = result_raw.strip().lower()
    laboratory = laboratory.strip()
    if verdict in _POSITIVE:
        result = "positive"
    elif verdict in _NEGATIVE:
        result = "negative"
    elif verdict in _WITHDRAWN:
        result = WITHDRAWN
    else:
        raise RowError("result.value")
    if not laboratory or len(laboratory) > 200:
        raise RowError("laboratory.missing")
    return (_iin(iin.strip()), sampled, result_at, result, laboratory)


def _contact_row(fields: list[str], tz: ZoneInfo, latest: datetime) -> tuple[Any, ...]:
    iin, registered_raw, end_raw = (f.strip() for f in fields)
    registered = parse_time(registered_raw, tz, latest)
    end = _moment(end_raw, tz)
    if end <= registered:
        raise RowError("time.order")
    return (_iin(iin), registered, end)


def _phone_row(fields: list[str], tz: ZoneInfo, latest: datetime) -> tuple[Any, ...]:
    iin, phone = (f.strip() for f in fields)
    try:
        return (_iin(iin), parse_phone(phone))
    except InvalidInput as error:
        raise RowError(error.code) from None


_YES = {"yes", "y", "true", "1", "да", "иә", "allowed"}
_NO = {"no", "n", "false", "0", "нет", "жоқ", "refused"}


def _org_row(fields: list[str], tz: ZoneInfo, latest: datetime) -> tuple[Any, ...]:
    bin_, name, activity, phone, allowed = (f.strip() for f in fields)
    try:
        bin_ = parse_bin(bin_).value
        phone = parse_phone(phone)
    except InvalidInput as error:
        raise RowError(error.code) from None
    if not 1 <= len(name) <= 300:
        raise RowError("org.name")
    if not re.fullmatch(r"[0-9][0-9.]{0,19}", activity):
        raise RowError("org.activity")
    answer = allowed.lower()
    if answer not in _YES | _NO:
        raise RowError("org.allowed")
    return (bin_, name, activity, phone, answer in _YES)


def _poi_row(fields: list[str], tz: ZoneInfo, latest: datetime) -> tuple[Any, ...]:
    kind, name, latitude, longitude, residents = (f.strip() for f in fields)
    if kind.lower() not in POI_KINDS:
        raise RowError("poi.kind")
    if not 1 <= len(name) <= 300:
        raise RowError("poi.name")
    try:
        point = parse_coordinates(float(latitude), float(longitude))
    except ValueError as error:  # InvalidInput is a ValueError too
        raise RowError(getattr(error, "code", "location.format")) from None
    count = None
    if residents or kind.lower() == "residents":
        # ASCII digits only ("²" is a digit to str.isdigit), and within PostgreSQL's integer
        if not (residents.isascii() and residents.isdigit() and len(residents) <= 9):
            raise RowError("poi.residents")
        count = int(residents)
    return (kind.lower(), name, point.latitude, point.longitude, count)


def ambulance_row(
    fields: list[str], tz: ZoneInfo, latest: datetime, *, codes: CodeSet
) -> tuple[Any, ...]:
    """A call of the ambulance register (its codes set by the importer's settings, so
    the importer binds ``codes``: see RegistryImporter)."""
    call_id, called_raw, lat, lon, address, code, outcome, hospital, placed_raw, system = (
        f.strip() for f in fields
    )
    called = parse_time(called_raw, tz, latest)
    placed = parse_time(placed_raw, tz, latest) if placed_raw else None
    if placed is not None and placed < called:
        raise RowError("time.order")
    try:
        call = check_call(
            call_id,
            lat,
            lon,
            address,
            code,
            outcome,
            hospital,
            system,
            codes=codes,
            placed=placed is not None,
        )
    except InvalidInput as error:
        raise RowError(error.code) from None
    return (
        call.call_id, called, call.latitude, call.longitude, call.address, call.code,
        call.outcome, call.hospital, placed, call.system,
    )  # fmt: skip


RowParser = Callable[[list[str], ZoneInfo, datetime], tuple[Any, ...]]
PARSERS: dict[str, RowParser] = {
    "pcr": _pcr_row,
    "contacts": _contact_row,
    "phones": _phone_row,
    "orgs": _org_row,
    "pois": _poi_row,
}


class CsvSource:
    """Rows of a CSV file with their line numbers, read as a stream, header skipped.

    UTF-8 (with or without BOM) or, when the start of the file is not UTF-8,
    Windows-1251 as Excel writes it in Kazakhstan; comma or semicolon separated. A row
    the csv module cannot read (broken quoting, a huge field) is yielded as None so
    that it is reported with its line number instead of stopping the import.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._binary: io.BufferedReader | None = None

    def fraction_read(self) -> float:
        if self._binary is None or not self.size:
            return 0.0
        if self._binary.closed:
            return 1.0
        return min(1.0, self._binary.tell() / self.size)

    def __iter__(self) -> Iterator[tuple[int, list[str] | None]]:
        """Each iteration reads the file anew (an import that reads it twice may)."""
        return self.rows()

    def rows(self) -> Iterator[tuple[int, list[str] | None]]:
        with self.path.open("rb") as binary:
            head = binary.read(1 << 20)
            binary.seek(0)
            try:
                head.decode("utf-8")
                encoding = "utf-8-sig"
            except UnicodeDecodeError as error:
                encoding = "utf-8-sig" if error.start > len(head) - 4 else "cp1251"
            self._binary = binary
            text = io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline="")
            yield from read_csv_lines(text)


def read_csv_lines(lines: Iterable[str]) -> Iterator[tuple[int, list[str] | None]]:
    iterator = iter(lines)
    first = next(iterator, "")
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(_chain(first, iterator), delimiter=delimiter, strict=True)
    header_seen = False
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            yield reader.line_num, None
            continue
        if not header_seen:
            header_seen = True
            # A header names columns: its first cell has no digit (an IIN, a BIN, a day do).
            if fields and not any(c.isdigit() for c in fields[0]):
                continue
        if not fields or fields == [""]:
            continue
        yield reader.line_num, fields


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest
