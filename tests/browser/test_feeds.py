"""The Feeds pages in a real browser: an analyst uploads a traffic file, sees the report,
opens the feed's chart and rows, and finds it on the situation centre; the operators'
and the calls' pages; and both as choropleths on the Map page."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from citybots.platform import Platform
from services.feeds.specs import FEEDS
from tests.browser.test_panel import _browser_login, _screenshot, _user
from tests.factories import add_district, feed_row
from tests.integration.test_rollups import refreshed


def _today(platform: Platform) -> date:
    """The city's date (after 19:00 UTC it is already tomorrow in Almaty)."""
    return datetime.now(ZoneInfo(platform.settings.city_timezone)).date()


async def _shown(page: Page, name: str) -> None:
    """The page as it stands, in a screenshot, with nothing wrong in its console."""
    await _screenshot(page, name)
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.fixture
async def retired(platform: Platform) -> AsyncIterator[list[str]]:
    """The names of the zones a test adds, ended after it: other pages' maps (the brigades'
    drawing map) fit every zone in force, and a test's zones must not widen them."""
    names: list[str] = []
    yield names
    assert platform.services is not None
    await platform.services.zones.pool.execute(
        "UPDATE zones SET valid_until = now() WHERE name = ANY($1::text[])"
        " AND valid_until IS NULL",
        names,
    )


async def _sectors_away(platform: Platform, days: int, retired: list[str]) -> list[str]:
    """Three sectors in force, side by side near the city, and the operators' counts for
    their last ``days`` city days: more in each later sector, a peak at 23:00 (rolled up)."""
    assert platform.services is not None
    sectors = [f"Sector {n} {secrets.token_hex(2)}" for n in range(3)]
    retired += sectors
    for n, sector in enumerate(sectors):
        west = 76.85 + 0.05 * n
        corners = [[west, 43.2], [west + 0.05, 43.2], [west + 0.05, 43.26], [west, 43.26]]
        await platform.services.zones.pool.execute(
            "INSERT INTO zones (name, kind, geometry, valid_from)"
            " VALUES ($1, 'sector', $2, now())",
            sector,
            {"type": "Polygon", "coordinates": [[*corners, corners[0]]]},
        )
    rows: list[tuple[int, list[str]]] = []
    for back in range(days):
        day = (_today(platform) - timedelta(days=back)).isoformat()
        for n, sector in enumerate(sectors):
            for hour in (22, 23, 0, 1, 2):
                away = (n + 1) * (40 if hour == 23 else 10) + back
                rows.append((len(rows) + 1, [day, str(hour), sector, "Kcell", str(away)]))
    report = await platform.services.feeds.importer.import_rows("operators", rows, source="test")
    assert report.accepted == len(rows)
    await refreshed(platform.services.rollups)
    return sectors


async def test_an_analyst_uploads_traffic_and_sees_it_charted(
    browser: Browser, platform: Platform, tmp_path: Path
) -> None:
    assert platform.services is not None
    today = _today(platform)
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
    await _shown(page, "situation-feeds")


async def test_an_analyst_sees_the_operators_heat_map_and_choropleth(
    browser: Browser, platform: Platform, retired: list[str]
) -> None:
    sectors = await _sectors_away(platform, 7, retired)
    page = await _browser_login(browser, platform, await _user(platform, "analyst"))
    await page.goto(f"{platform.base_url}/feeds/operators")
    await expect(page.locator("#heatmap-operators")).to_be_visible()
    await expect(page.locator("#choropleth")).to_be_visible()
    await expect(page.locator("#sectors")).to_contain_text(sectors[2])
    await expect(page.locator("h2").first).to_contain_text("peak hours 23:00")
    await _shown(page, "feed-operators")


async def test_an_analyst_filters_the_three_lines_calls_by_line_and_hour(
    browser: Browser, platform: Platform
) -> None:
    assert platform.services is not None
    today = _today(platform).isoformat()
    district = f"District {secrets.token_hex(2)}"
    rows: list[tuple[int, list[str]]] = []
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
    await _shown(page, "feed-calls")


async def test_the_map_shows_the_operators_by_sector_and_the_calls_by_district(
    browser: Browser, retired: list[str], platform: Platform
) -> None:
    assert platform.services is not None
    sectors = await _sectors_away(platform, 10, retired)
    # over the sectors, as a city's districts are
    district, _, _ = await add_district(platform.services, size=0.08, corner=(76.87, 43.17))
    retired.append(district)
    today = _today(platform)
    calls: list[tuple[int, list[str]]] = []
    for back, line in ((0, "103"), (1, "1308"), (1, "1308"), (9, "1406")):
        day = (today - timedelta(days=back)).isoformat()
        call = f"M-{len(calls)}-{secrets.token_hex(3)}"
        calls.append((len(calls) + 1, [day, "10", line, district, call, "60"]))
    report = await platform.services.feeds.importer.import_rows("calls", calls, source="test")
    assert report.accepted == 4
    await refreshed(platform.services.rollups)

    page = await _browser_login(browser, platform, await _user(platform, "analyst"))
    await page.click("header nav >> text=Map")
    summary = page.locator("#feeds-summary[data-ready=true]")
    await expect(summary).to_contain_text("subscriber-hours away in")
    shown = (await summary.text_content() or "").split(" sectors")[0].split()[-1]
    assert int(shown) >= 3  # other tests' sectors too
    await expect(page.locator("#feeds-top")).to_contain_text(sectors[2])
    assert await page.locator("#feeds-to").input_value() == today.isoformat()
    sector_shapes = page.locator('path[fill="#b71c1c"]')
    assert await sector_shapes.count() >= 3
    darkest = await sector_shapes.evaluate_all(
        "paths => paths.map(p => Number(p.getAttribute('fill-opacity')))"
    )
    assert max(darkest) > min(darkest)  # a choropleth: the sectors shaded by their counts
    await page.locator("#map").scroll_into_view_if_needed()
    await _screenshot(page, "map-feeds-operators")
    district_shapes = page.locator('path[fill="#0d47a1"]')
    await expect(district_shapes).to_have_count(0)  # the calls' layer is off at first
    await page.get_by_label("Operators: away at night (sectors)").uncheck()
    await page.get_by_label("Calls by district").check()
    await expect(district_shapes.first).to_be_attached()
    await expect(sector_shapes).to_have_count(0)
    await _screenshot(page, "map-feeds-calls")

    await page.fill("#feeds-from", (today - timedelta(days=1)).isoformat())
    await page.select_option("#feeds-line", "1308")
    await page.click("#feeds-range button")
    await expect(page.locator("#feeds-summary[data-ready=true]")).to_contain_text("calls to 1308")
    await expect(page.locator("#feeds-top")).to_contain_text(f"{district}: 2 calls to 1308")
    await _shown(page, "map-feeds-1308")
    await page.fill("#feeds-from", "2020-01-01")
    await page.click("#feeds-range button")
    await expect(page.locator("#feeds-summary")).to_contain_text("at most 92 days")


async def test_the_map_has_no_feed_layers_for_those_who_may_not_see_the_feeds(
    browser: Browser, platform: Platform
) -> None:
    page = await _browser_login(browser, platform, await _user(platform, "permits_officer"))
    await page.goto(f"{platform.base_url}/map")
    await expect(page.locator("#map[data-ready=true]")).to_be_attached()
    await expect(page.locator("#feeds-card")).to_have_count(0)
    answer = await page.goto(f"{platform.base_url}/map/feeds.json")
    assert answer is not None
    assert answer.status == 403


async def test_every_feeds_page_charts_its_days_and_lists_its_rows(
    browser: Browser, platform: Platform
) -> None:
    assert platform.services is not None
    name = f"B{secrets.token_hex(3)}"
    days = [_today(platform) - timedelta(days=back) for back in range(5)]
    for spec in FEEDS.values():
        rows = [(n, feed_row(spec, day, 30 + n, name=name)) for n, day in enumerate(days, 1)]
        report = await platform.services.feeds.importer.import_rows(spec.name, rows, source="test")
        assert report.accepted == 5, spec.name
    await refreshed(platform.services.rollups)
    page = await _browser_login(browser, platform, await _user(platform, "analyst"))
    for spec in FEEDS.values():
        await page.goto(f"{platform.base_url}/feeds")
        await page.click(f"#feed-{spec.name} a")
        await expect(page.locator(f"#chart-{spec.name}")).to_be_visible()
        await expect(page.locator("#rows")).to_contain_text(name)
        await _shown(page, f"feed-page-{spec.name}")
