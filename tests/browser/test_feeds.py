"""The Feeds pages in a real browser: an analyst uploads a traffic file, sees the report,
opens the feed's chart and rows, and finds it on the situation centre."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, expect

from citybots.platform import Platform
from tests.browser.test_panel import _browser_login, _screenshot, _user
from tests.integration.test_rollups import refreshed


async def test_an_analyst_uploads_traffic_and_sees_it_charted(
    browser: Browser, platform: Platform, tmp_path: Path
) -> None:
    assert platform.services is not None
    tz = ZoneInfo(platform.settings.city_timezone)
    today = datetime.now(tz).date()
    camera = f"CAM-{secrets.token_hex(2)}"
    lines = ["day,hour,district,camera,vehicles"]
    for back in range(14):
        day = today - timedelta(days=back)
        lines += [f"{day},{hour},Medeu,{camera},{900 + 37 * back + hour}" for hour in (8, 18)]
    lines.append(f"{today},,Medeu,{camera},-5")
    file = tmp_path / "traffic.csv"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    page = await _browser_login(browser, platform, await _user(platform, "analyst"))
    await page.goto(f"{platform.base_url}/feeds")
    await expect(page.locator("#feed-traffic")).to_contain_text("Road traffic")
    await page.select_option("#kind", "traffic")
    await page.set_input_files("#file", str(file))
    await page.click("#upload button[type=submit]")
    await expect(page.locator("#result")).to_contain_text("28 added")
    await expect(page.locator("#result")).to_contain_text("1 rejected")
    await expect(page.locator("#rejected-link")).to_be_visible()
    await _screenshot(page, "feeds-upload")

    await refreshed(platform.services.rollups)
    await page.goto(f"{platform.base_url}/feeds/traffic")
    await expect(page.locator("#chart-traffic")).to_be_visible()
    await expect(page.locator("#rows")).to_contain_text(camera)
    await _screenshot(page, "feed-traffic")

    await page.goto(f"{platform.base_url}/situation")
    await expect(page.locator("#tile-feed-traffic")).to_be_visible()
    await expect(page.locator("#chart-feed-traffic")).to_be_visible()
    await _screenshot(page, "situation-feeds")
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_an_analyst_sees_the_operators_heat_map_and_choropleth(
    browser: Browser, platform: Platform
) -> None:
    assert platform.services is not None
    tz = ZoneInfo(platform.settings.city_timezone)
    today = datetime.now(tz).date()
    sectors = [f"Sector {n} {secrets.token_hex(2)}" for n in range(3)]
    for n, sector in enumerate(sectors):
        west = 76.85 + 0.05 * n
        await platform.services.zones.pool.execute(
            "INSERT INTO zones (name, kind, geometry, valid_from)"
            " VALUES ($1, 'sector', $2, now())",
            sector,
            {
                "type": "Polygon",
                "coordinates": [
                    [
                        [west, 43.2],
                        [west + 0.05, 43.2],
                        [west + 0.05, 43.26],
                        [west, 43.26],
                        [west, 43.2],
                    ]
                ],
            },
        )
    rows = []
    for back in range(7):
        day = (today - timedelta(days=back)).isoformat()
        for n, sector in enumerate(sectors):
            for hour in (22, 23, 0, 1, 2):
                away = (n + 1) * (40 if hour == 23 else 10) + back
                rows.append((len(rows) + 1, [day, str(hour), sector, "Kcell", str(away)]))
    report = await platform.services.feeds.importer.import_rows("operators", rows, source="test")
    assert report.accepted == len(rows)
    await refreshed(platform.services.rollups)
    page = await _browser_login(browser, platform, await _user(platform, "analyst"))
    await page.goto(f"{platform.base_url}/feeds/operators")
    await expect(page.locator("#heatmap-operators")).to_be_visible()
    await expect(page.locator("#choropleth")).to_be_visible()
    await expect(page.locator("#sectors")).to_contain_text(sectors[2])
    await expect(page.locator("h2").first).to_contain_text("peak hours 23:00")
    await _screenshot(page, "feed-operators")
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_an_analyst_filters_the_three_lines_calls_by_line_and_hour(
    browser: Browser, platform: Platform
) -> None:
    assert platform.services is not None
    tz = ZoneInfo(platform.settings.city_timezone)
    today = datetime.now(tz).date().isoformat()
    district = f"District {secrets.token_hex(2)}"
    rows = []
    for line, hours in (("103", (9, 9, 10, 22)), ("1308", (9, 11, 11, 11)), ("1406", (15,))):
        for n, hour in enumerate(hours):
            rows.append(
                (len(rows) + 1, [today, str(hour), line, district, f"{line}-{n}-{district}", "90"])
            )
    report = await platform.services.feeds.importer.import_rows("calls", rows, source="test")
    assert report.accepted == len(rows)
    await refreshed(platform.services.rollups)
    page = await _browser_login(browser, platform, await _user(platform, "analyst"))
    await page.goto(f"{platform.base_url}/feeds/calls")
    await expect(page.locator("#heatmap-calls")).to_contain_text(district)
    await page.select_option("#line", "1308")
    await page.click("#calls-filter button[type=submit]")
    await expect(page.locator("#peak-hours")).to_contain_text("peak hours 11:00")
    await page.select_option("#hour", "11")
    await page.click("#calls-filter button[type=submit]")
    await expect(page.locator("#districts")).to_contain_text(district)
    await expect(page.locator("#topics")).to_be_visible()
    await _screenshot(page, "feed-calls")
    assert page.console_errors == []  # type: ignore[attr-defined]
