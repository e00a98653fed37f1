import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from citybots.wiring import Services
from services.registry_rows import CsvSource
from services.status import Colour
from tests.factories import add_contact, add_pcr, make_iin


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


async def test_a_pcr_file_is_validated_row_by_row_and_reimporting_adds_nothing(
    services: Services, tmp_path: Path
) -> None:
    good, other = make_iin(), make_iin()
    now = datetime.now(UTC).replace(microsecond=0)
    sampled, result = (
        (now - timedelta(hours=30)).isoformat(),
        (now - timedelta(hours=2)).isoformat(),
    )
    csv_text = (
        "iin,sampled_at,result_at,result,laboratory\n"
        f"{good},{sampled},{result},negative,Lab A\n"
        f"{other},{sampled},{result},positive,Lab A\n"
        f"900101300016,{sampled},{result},negative,Lab A\n"
        f"{good},yesterday,{result},negative,Lab A\n"
        f"{good},{result},{sampled},negative,Lab A\n"
        f"{good},{sampled},{result},maybe,Lab A\n"
        f"{good},{sampled},2999-01-01T00:00:00+00:00,negative,Lab A\n"
        f"{good},{sampled}\n"
        f'{good},"{sampled},{result},negative,Lab B\n'
    )
    path = _write(tmp_path / "pcr.csv", csv_text)
    report = await services.importer.import_rows("pcr", CsvSource(path).rows())
    assert report.accepted == 2
    assert [(r.line, r.code) for r in report.rejected] == [
        (4, "iin.check_digit"),
        (5, "time.format"),
        (6, "time.order"),
        (7, "result.value"),
        (8, "time.future"),
        (9, "row.columns"),
        (10, "row.malformed"),
    ]
    again = await services.importer.import_rows("pcr", CsvSource(path).rows())
    assert again.accepted == 0
    assert again.duplicates == 2
    assert (await services.statuses.status(good)).colour is Colour.GREEN
    assert (await services.statuses.status(other)).colour is Colour.RED

    report.write_rejected(tmp_path / "rejected.csv")
    lines = (tmp_path / "rejected.csv").read_text().splitlines()
    assert lines[0].startswith("line,code,reason,iin")
    assert len(lines) == 8


async def test_a_windows_1251_file_with_semicolons_imports(
    services: Services, tmp_path: Path
) -> None:
    iin = make_iin()
    text = f"ИИН;телефон\n{iin};8 701 555 12 34\n"
    path = _write(tmp_path / "phones.csv", text, "cp1251")
    report = await services.importer.import_rows("phones", CsvSource(path).rows())
    assert report.accepted == 1, report.as_dict()


async def test_rejected_rows_cannot_inject_formulas_into_a_spreadsheet(
    services: Services, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "contacts.csv",
        'iin,registered_at,isolation_end\n=HYPERLINK("http://x"),@SUM(A1),-1\n',
    )
    report = await services.importer.import_rows("contacts", CsvSource(path).rows())
    report.write_rejected(tmp_path / "out.csv")
    row = (tmp_path / "out.csv").read_text().splitlines()[1]
    assert "'=HYPERLINK" in row
    assert "'@SUM" in row
    assert "'-1" in row


async def test_a_new_record_changes_the_cached_status_at_once(services: Services) -> None:
    iin = make_iin()
    assert (await services.statuses.status(iin)).colour is Colour.BLUE
    await add_pcr(services, iin, "negative")
    assert (await services.statuses.status(iin)).colour is Colour.GREEN
    await add_contact(services, iin)
    assert (await services.statuses.status(iin)).colour is Colour.YELLOW
    await add_pcr(services, iin, "positive")
    status = await services.statuses.status(iin)
    assert status.colour is Colour.RED
    assert status.reason == "pcr_positive"
    assert status.needs_negative_test


async def test_a_status_computed_before_a_write_is_not_believed_after_it(
    services: Services,
) -> None:
    iin = make_iin()
    stale = await services.statuses.status(iin)
    await add_pcr(services, iin, "positive")
    # A reader that computed BLUE before the write stores it after the invalidation.
    entry = {**stale.to_dict(), "generation": 0}
    await services.statuses.redis.set(f"status:{iin}", json.dumps(entry))
    assert (await services.statuses.status(iin)).colour is Colour.RED


async def test_an_invalidation_redis_missed_is_made_by_the_catch_up_job(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis fails between a positive result's commit and the invalidation: the note
    written in the import's transaction lets the catch-up make the cached green stale."""
    iin = make_iin()
    await add_pcr(services, iin, "negative")
    assert (await services.statuses.status(iin)).colour is Colour.GREEN  # cached now

    async def redis_fails(iins: object) -> None:
        raise ConnectionError("Redis went away")

    with monkeypatch.context() as patched:
        patched.setattr(services.statuses, "invalidate", redis_fails)
        with pytest.raises(ConnectionError):
            await add_pcr(services, iin, "positive")
    assert (await services.statuses.status(iin)).colour is Colour.GREEN  # stale until...
    assert await services.statuses.catch_up(settled=timedelta(0)) >= 1
    assert (await services.statuses.status(iin)).colour is Colour.RED
    left = await services.statuses.pool.fetchval(
        "SELECT count(*) FROM status_changes WHERE $1 = ANY(iins)", iin
    )
    assert left == 0
