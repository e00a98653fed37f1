"""The feeds over HTTP: a source pushes rows with its key (only the feeds it was given),
an analyst uploads a CSV file, exports it back in the import's format, and the situation
centre's CSV export carries the feeds' columns."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import ClientSession, CookieJar, FormData

from citybots.platform import Platform
from services.feeds.specs import FEEDS
from tests.browser.test_panel import PASSWORD, HttpUser
from tests.factories import add_district, feed_row
from tests.integration.test_rollups import refreshed


async def _analyst(platform: Platform, http: ClientSession, role: str = "analyst") -> str:
    """Log ``http`` in as a new panel user of ``role``; returns the session's CSRF token."""
    assert platform.services is not None
    name = f"{role.replace('_', '-')}-{secrets.token_hex(3)}"
    await platform.services.panel.create_user(name, role, PASSWORD, actor="test")
    user = HttpUser(http, platform.base_url)
    assert await user.log_in(name) == 303
    return user.csrf


async def test_a_source_pushes_only_its_own_feeds_with_its_key(platform: Platform) -> None:
    assert platform.services is not None
    key = await platform.services.feeds.sources.add(
        f"Transit {secrets.token_hex(3)}", ["transport"]
    )
    route = f"R-{secrets.token_hex(3)}"
    rows = [
        {"day": "2025-01-10", "mode": "bus", "route": route, "passengers": 5300},
        {"day": "2025-01-10", "mode": "bus", "route": route, "passengers": -1},
        {
            "day": "2025-01-10",
            "mode": "bus",
            "route": route,
            "passengers": 1,
            "phone": "+77010000000",
        },
    ]
    url = f"{platform.base_url}/api/v1/feeds/transport"
    async with ClientSession() as http:
        async with http.post(url, json=rows) as answer:
            assert answer.status == 401
        async with http.post(url, json=rows, headers={"Authorization": "Bearer feed_forged"}) as r:
            assert r.status == 401
        headers = {"Authorization": f"Bearer {key}"}
        async with http.post(
            f"{platform.base_url}/api/v1/feeds/budget", json=rows, headers=headers
        ) as r:
            assert r.status == 403
        async with http.post(
            f"{platform.base_url}/api/v1/feeds/nope", json=rows, headers=headers
        ) as r:
            assert r.status == 404
        async with http.post(url, data=b"{oops", headers=headers) as answer:
            assert answer.status == 400
        async with http.post(url, json={"rows": rows}, headers=headers) as answer:
            assert answer.status == 200
            report = await answer.json()
    assert report["accepted"] == 1
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [
        (2, "figure.count"),
        (3, "row.columns"),
    ]


async def test_an_analyst_uploads_a_feed_and_exports_it_in_the_same_format(
    platform: Platform,
) -> None:
    assert platform.services is not None
    tz = ZoneInfo(platform.settings.city_timezone)
    today = datetime.now(tz).date()
    district = f"District {secrets.token_hex(3)}"
    content = (
        "day;district;pharmacies;quarantine_centres;quarantine_places\n"
        f"{today - timedelta(days=1)};{district};41;2;300\n"
        f"{today};{district};43;3;450\n"
        f"{today};;1;1;1\n"
    ).encode()
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        csrf = await _analyst(platform, http)
        base = platform.base_url
        upload = FormData()
        upload.add_field("kind", "facilities")
        upload.add_field("file", content, filename="facilities.csv", content_type="text/csv")
        headers = {"X-CSRF-Token": csrf, "X-File-Name": "facilities.csv"}
        async with http.post(f"{base}/feeds/import", data=upload, headers=headers) as answer:
            assert answer.status == 200, await answer.text()
            report = await answer.json()
        assert (report["accepted"], report["rejected"]) == (2, 1)
        async with http.get(f"{base}{report['rejected_report']}") as answer:
            assert "key.missing" in await answer.text()
        async with http.get(f"{base}/feeds/facilities.csv") as answer:
            assert answer.status == 200
            exported = list(csv.reader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
        assert exported[0] == [
            "day",
            "district",
            "pharmacies",
            "quarantine_centres",
            "quarantine_places",
        ]
        assert [today.isoformat(), district, "43", "3", "450"] in exported
        await refreshed(platform.services.rollups)
        async with http.get(f"{base}/feeds/facilities") as page:
            assert page.status == 200
            assert district in await page.text()
        async with http.get(f"{base}/situation.csv") as answer:
            assert answer.status == 200
            table = list(csv.DictReader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
        assert int(table[-1]["facilities_pharmacies"]) >= 43
        async with http.get(f"{base}/feeds/nope") as answer:
            assert answer.status == 404


async def test_the_feeds_pages_are_for_analysts_only(platform: Platform) -> None:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        csrf = await _analyst(platform, http, role="registry_officer")
        upload = FormData()
        upload.add_field("kind", "budget")
        upload.add_field("file", b"2025-01-01,Tests,1,1\n", filename="b.csv")
        async with http.post(
            f"{platform.base_url}/feeds/import", data=upload, headers={"X-CSRF-Token": csrf}
        ) as answer:
            assert answer.status == 403
        async with http.get(f"{platform.base_url}/feeds/budget.csv") as answer:
            assert answer.status == 403


async def test_a_telephone_system_pushes_calls_by_point_and_no_caller_number_is_kept(
    platform: Platform,
) -> None:
    assert platform.services is not None
    pool = platform.services.zones.pool
    district, latitude, longitude = await add_district(platform.services)
    key = await platform.services.feeds.sources.add(f"PBX {secrets.token_hex(3)}", ["calls"])
    today = datetime.now(ZoneInfo(platform.settings.city_timezone)).date().isoformat()
    tag = secrets.token_hex(3)
    call = {"day": today, "hour": 14, "line": "1406", "seconds": 75}
    rows = [
        {**call, "call": f"Q-{tag}-1", "latitude": latitude, "longitude": longitude},
        {**call, "call": f"Q-{tag}-2", "district": district, "caller": "+77011234567"},
    ]
    url = f"{platform.base_url}/api/v1/feeds/calls"
    headers = {"Authorization": f"Bearer {key}"}
    async with ClientSession() as http:
        async with http.post(url, json=rows, headers=headers) as answer:
            assert answer.status == 200
            report = await answer.json()
        assert (report["accepted"], report["rejected"]) == (2, [])
        numbered = [{**rows[1], "call": "+7 701 123 45 67"}]  # a number where the id goes
        async with http.post(url, json=numbered, headers=headers) as answer:
            refused = await answer.json()
        assert [(r["line"], r["code"]) for r in refused["rejected"]] == [
            (1, "operator.per_subscriber")
        ]
    stored = await pool.fetch(
        "SELECT keys, figures::text FROM feed_records WHERE feed = 'calls' AND keys[3] LIKE $1",
        f"Q-{tag}%",
    )
    assert sorted(r["keys"][1] for r in stored) == [district, district]
    assert not any("7011234567" in str(r) or str(latitude)[:7] in str(r) for r in stored)


async def test_every_feed_is_pushed_exported_in_its_import_format_and_shown(
    platform: Platform,
) -> None:
    assert platform.services is not None
    key = await platform.services.feeds.sources.add(f"All {secrets.token_hex(3)}", list(FEEDS))
    today = datetime.now(ZoneInfo(platform.settings.city_timezone)).date()
    name = f"E{secrets.token_hex(3)}"
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as http:
        await _analyst(platform, http)
        for spec in FEEDS.values():
            row = feed_row(spec, today, 21, name=name)
            item = {c: v for c, v in zip(spec.columns, row, strict=True) if v != ""}
            async with http.post(
                f"{platform.base_url}/api/v1/feeds/{spec.name}",
                json=[item],
                headers={"Authorization": f"Bearer {key}"},
            ) as answer:
                assert answer.status == 200
                assert (await answer.json())["accepted"] == 1, spec.name
            async with http.get(f"{platform.base_url}/feeds/{spec.name}.csv") as answer:
                text = (await answer.read()).decode("utf-8-sig")
            exported = list(csv.reader(io.StringIO(text)))
            assert exported[0] == list(spec.columns)
            assert row in exported, spec.name
            async with http.get(f"{platform.base_url}/feeds/{spec.name}") as page:
                assert page.status == 200
                assert f'id="chart-{spec.name}"' in await page.text()
