"""Registry CSV imports through the real importer, on hostile files: random cells, UTF-8,
Windows-1251 or garbage bytes, huge fields, formula prefixes, broken quoting, wrong
column counts. Every row is accepted or rejected with its line and a reason, nothing
raises, and what PostgreSQL holds afterwards is exactly what the report says."""

from __future__ import annotations

import csv
import io
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from citybots.wiring import Services
from services.registry_rows import COLUMNS, KINDS, POI_KINDS, REASONS, CsvSource
from services.validation import _check_digit
from tests.property import cases
from tests.property.strategies import FORMULA_STARTS, hostile_text

NOW = datetime.now(UTC)


@st.composite
def iins(draw: st.DrawFn) -> str:
    body = draw(st.text("0123456789", min_size=11, max_size=11))
    digit = _check_digit(body)
    return body + str(digit if digit is not None else 0)


def times() -> st.SearchStrategy[str]:
    moments = st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.none()
    )
    recent = st.integers(0, 40 * 24 * 60).map(lambda m: NOW - timedelta(minutes=m))
    return st.one_of(
        recent.map(lambda t: t.isoformat()),
        recent.map(lambda t: t.astimezone().strftime("%Y-%m-%d %H:%M")),
        moments.map(lambda t: t.isoformat()),
        st.sampled_from(
            ["0001-01-01", "0001-01-01T00:00+14:00", "9999-12-31T23:59:59-12:00", "2026-02-30"]
        ),
        hostile_text(max_size=30),
    )


def cells() -> st.SearchStrategy[str]:
    return st.one_of(
        hostile_text(max_size=40),
        st.tuples(st.sampled_from(FORMULA_STARTS), hostile_text(max_size=10)).map("".join),
        st.integers(-(10**20), 10**20).map(str),
        st.sampled_from(["nan", "inf", "-0", "1e400", "²", "١٢", "  ", '"', '""']),
    )


def plausible_row(kind: str) -> st.SearchStrategy[list[str]]:
    """Rows that are mostly right, so that the storing path is fuzzed too."""
    result = st.sampled_from(["positive", "negative", "POS", "+", "-", "оң", "maybe"])
    name = st.one_of(st.text(min_size=1, max_size=12), cells())
    number = st.one_of(
        st.floats(-200, 200).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str)
    )
    phone = st.one_of(st.integers(0, 10**9 - 1).map(lambda n: f"+77{n:09d}"), cells())
    strategies = {
        "pcr": st.tuples(iins(), times(), times(), result, name),
        "contacts": st.tuples(iins(), times(), times()),
        "phones": st.tuples(iins(), phone),
        "orgs": st.tuples(
            st.one_of(iins(), st.just("971240001315")),
            name,
            st.sampled_from(["47.11", "86", "1.2.3", "x"]),
            phone,
            st.sampled_from(["yes", "no", "да", "maybe"]),
        ),
        "pois": st.tuples(
            st.sampled_from([*POI_KINDS, "zoo"]),
            name,
            number,
            number,
            st.one_of(st.integers(-5, 10**12).map(str), st.just(""), cells()),
        ),
        "ambulance": st.tuples(
            st.one_of(st.text("AZ09-", min_size=1, max_size=10), cells()),
            times(),
            number,
            number,
            st.one_of(st.just(""), name),
            st.sampled_from(["J18.9", "J00", "J22", "J23", "U07.1", "I21", "x"]),
            st.sampled_from(["on_site", "hospital", "refused", "отказ", "maybe"]),
            st.one_of(st.just(""), name),
            st.one_of(st.just(""), times()),
            st.one_of(st.just("103"), name),
        ),
    }
    return strategies[kind].map(list)


def any_row(kind: str) -> st.SearchStrategy[list[str]]:
    width = len(COLUMNS[kind])
    return st.one_of(
        plausible_row(kind),
        st.lists(cells(), min_size=width, max_size=width),
        st.lists(cells(), min_size=0, max_size=width + 3),  # wrong column counts
    )


# Rows drawn per file in the fuzz run; each row the importer reads is a case. Up to a
# tenth of them are blank or taken for a header (not rows); broken lines add some.
ROWS = 40
FILES_FOR = ROWS * 9 // 10


@st.composite
def csv_files(draw: st.DrawFn, kind: str) -> bytes:
    delimiter = draw(st.sampled_from([",", ";"]))
    out = io.StringIO()
    writer = csv.writer(
        out, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))
    )
    if draw(st.booleans()):
        writer.writerow(COLUMNS[kind])
    smallest, largest = (ROWS, ROWS) if cases.FUZZ else (0, 12)
    for row in draw(st.lists(any_row(kind), min_size=smallest, max_size=largest)):
        writer.writerow(row)
        if draw(st.integers(0, 9)) == 0:  # broken quoting, a raw line
            out.write(draw(st.sampled_from(['"unterminated,field\n', 'a,"b"c",d\n', '"\n'])))
        if draw(st.integers(0, 29)) == 0:  # a field bigger than the csv module allows
            out.write('"' + "A" * draw(st.integers(131_000, 200_000)) + '"\n')
    text = out.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1251", "garbage"]))
    if encoding == "garbage":
        data = bytearray(text.encode("utf-8"))
        for _ in range(draw(st.integers(1, 5))):
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        return bytes(data)
    return text.encode(encoding, errors="replace")


async def _stored(services: Services, kind: str, source: str) -> int | None:
    table = {
        "pcr": "pcr_results",
        "orgs": "organisations",
        "pois": "points_of_interest",
        "ambulance": "ambulance_calls",
    }
    if kind not in table:
        return None
    has_source = await services.importer.pool.fetchval(
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_name = $1 AND column_name = 'source'",
        table[kind],
    )
    if not has_source:
        return None
    count: int = await services.importer.pool.fetchval(
        f"SELECT count(*) FROM {table[kind]} WHERE source = $1",  # noqa: S608
        source,
    )
    return count


@cases.examples(ci=40, batch=FILES_FOR)
@given(st.data())
async def test_every_row_of_a_hostile_file_is_stored_or_rejected_with_a_line_and_reason(
    services: Services, data: st.DataObject
) -> None:
    kind = data.draw(st.sampled_from(KINDS))
    cases.enter("registry CSV import")
    content = data.draw(csv_files(kind))
    source = f"fuzz:{secrets.token_hex(6)}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.csv"
        path.write_bytes(content)
        report = await services.importer.import_rows(kind, CsvSource(path).rows(), source=source)
        rejected_csv = Path(folder) / "rejected.csv"
        report.write_rejected(rejected_csv)
        with rejected_csv.open(newline="", encoding="utf-8") as written:
            for row in list(csv.reader(written))[1:]:
                assert not any(c.startswith(FORMULA_STARTS) for c in row[3:]), row
    assert report.accepted + report.duplicates + len(report.rejected) == report.rows
    lines = [r.line for r in report.rejected]
    assert all(line >= 1 for line in lines)
    assert lines == sorted(lines)
    for rejected in report.rejected:
        assert rejected.code in REASONS, rejected.code
    stored = await _stored(services, kind, source)
    if stored is not None:
        assert stored == report.accepted
    cases.tick("registry CSV import", report.rows)


async def test_a_row_with_a_nul_is_rejected_with_its_reason_not_a_failed_import(
    services: Services,
) -> None:
    """A NUL in a name reached COPY and failed the whole chunk (found by the fuzz run)."""
    rows = {
        "pois": [
            ["pharmacy", "Apteka\x00", "43.2", "76.9", ""],
            ["shop", "Ok", "43.2", "76.9", ""],
        ],
        "orgs": [["971240001315", "Org\x00", "47.11", "+77012345678", "yes"]],
    }
    for kind, fields in rows.items():
        report = await services.importer.import_rows(
            kind, list(enumerate(fields, start=2)), source=f"fuzz:{secrets.token_hex(6)}"
        )
        assert [r.code for r in report.rejected] == ["row.nul"]
        assert report.accepted + report.duplicates == len(fields) - 1
