"""Personal data at rest: a registry upload goes through a private temporary file that is
gone when the import ends, its rejected rows are a 0600 file in a 0700 folder, and the
retention job removes reports older than REPORT_RETENTION_DAYS."""

import os
import secrets
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, CookieJar

from citybots.platform import Platform
from services.private_files import TEMP_PREFIX
from tests.factories import make_iin, register_upload
from tests.property.test_web import PASSWORD, _log_in


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
async def officer(platform: Platform) -> AsyncIterator[tuple[ClientSession, str]]:
    async for limit in platform.redis.scan_iter("rate:panel-login:*"):
        await platform.redis.delete(limit)
    name = f"atrest-{secrets.token_hex(3)}"
    await platform.services.panel.create_user(name, "registry_officer", PASSWORD, actor="t")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        yield http, await _log_in(http, platform.base_url, name)


async def test_rejected_rows_are_a_private_file_and_no_upload_is_left_behind(
    platform: Platform, officer: tuple[ClientSession, str]
) -> None:
    http, csrf = officer
    reports = platform.settings.reports_dir
    rows = f"{make_iin()},8 701 999 88 77\n123,+77012345678\n"
    form = register_upload("phones", "iin,phone\n" + rows, "phones.csv")
    async with http.post(
        f"{platform.base_url}/registry/import", data=form, headers={"X-CSRF-Token": csrf}
    ) as answer:
        assert answer.status == 200, await answer.text()
        report = await answer.json()
    assert report["rejected"] == 1
    report_id = report["rejected_report"].rsplit("/", 1)[1]
    written = reports / f"{report_id}.rejected.csv"
    assert _mode(reports) == 0o700
    assert _mode(written) == 0o600
    assert not list(reports.glob(f"{TEMP_PREFIX}*"))
    async with http.get(platform.base_url + report["rejected_report"]) as download:
        assert download.status == 200
        assert "+77012345678" in await download.text()


async def test_a_failed_upload_leaves_no_file(
    platform: Platform, officer: tuple[ClientSession, str]
) -> None:
    http, csrf = officer
    before = set(platform.settings.reports_dir.iterdir())
    form = register_upload("no such register", "iin,phone\n791028302728,+77012345678\n", "x.csv")
    async with http.post(
        f"{platform.base_url}/registry/import", data=form, headers={"X-CSRF-Token": csrf}
    ) as answer:
        assert answer.status == 400
    assert set(platform.settings.reports_dir.iterdir()) == before


async def test_the_retention_job_removes_reports_past_report_retention_days(
    platform: Platform,
) -> None:
    reports = platform.settings.reports_dir
    old, new = reports / "0ld0ld.rejected.csv", reports / "n3wn3w.rejected.csv"
    for path in (old, new):
        path.write_text("line,code,reason,iin\n")
    days = platform.settings.report_retention_days
    aged = time.time() - (days + 1) * 86400
    os.utime(old, (aged, aged))
    await platform.jobs.retention()
    assert not old.exists()
    assert new.exists()
