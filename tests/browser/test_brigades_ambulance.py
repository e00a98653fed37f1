"""The panel's new pages in headless Chromium: the Ambulance 103 page and the map's
ambulance layer by day range (an epidemiologist), and the Brigades page with a district
planned in one step, an area drawn on the map and the clean-zones layer (operations)."""

import random
import secrets
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Page, Route, expect

from citybots.platform import Platform
from tests.browser.test_panel import _browser_login, _screenshot, _user
from tests.integration.test_brigades import M_LAT, M_LON, live_fix, make_district


async def _calls(platform: Platform, count: int, days_ago: float) -> None:
    """``count`` calls from one block (a cluster from five on), ``days_ago`` days ago."""
    assert platform.services is not None
    lat, lon = 43.1 + random.random() * 0.2, 76.8 + random.random() * 0.3
    start = datetime.now(UTC) - timedelta(days=days_ago)
    rows = []
    for i in range(count):
        placed = (start + timedelta(hours=i, minutes=40)).isoformat()
        rows.append(
            (
                i + 1,
                [f"BR{secrets.token_hex(4)}", (start + timedelta(hours=i)).isoformat(),
                 str(lat + i * 0.0001), str(lon), f"Abay {i}", "J18", "hospital",
                 "City Hospital 2", placed, "103"],
            )
        )  # fmt: skip
    await platform.services.ambulance.import_calls(rows, source="test", actor="test")


async def _drawing_over(page: Page, district: str) -> None:
    """The Brigades page's drawing map fits every zone in force, and the session's database
    holds the zones of the tests that ran before (districts kilometres, or hundreds of
    kilometres, apart): the map is given only ``district``'s, so that clicks across it draw
    a line within the district, not one wider than 20 km (refused), whatever ran before."""

    async def own_zones(route: Route) -> None:
        response = await route.fetch()
        layers = await response.json()
        zones = layers["zones"]["features"]
        layers["zones"]["features"] = [
            z for z in zones if z["properties"]["name"].startswith(district)
        ]
        await route.fulfill(response=response, json=layers)

    await page.route("**/map/layers.json", own_zones)


async def test_an_epidemiologist_sees_a_new_cluster_acknowledges_it_and_maps_the_calls(
    browser: Browser, platform: Platform
) -> None:
    await _calls(platform, 6, days_ago=1)
    await _calls(platform, 2, days_ago=20)
    page = await _browser_login(browser, platform, await _user(platform, "epidemiologist"))
    await expect(page.locator("#attention")).to_contain_text("new cluster(s) of ambulance calls")
    await page.click("header nav >> text=Ambulance")
    table = page.locator("#clusters")
    await expect(table).to_contain_text("Abay 1")
    row = table.locator("tr", has_text="Abay 1").first
    await expect(row).to_contain_text("new")
    await _screenshot(page, "ambulance-clusters")
    await row.locator("button", has_text="Acknowledge").click()
    await expect(table.locator("tr", has_text="Abay 1").first).to_contain_text("acknowledged by")

    await page.click("header nav >> text=Map")
    summary = page.locator("#ambulance-summary[data-ready=true]")
    await expect(summary).to_contain_text("clusters")
    shown = int((await summary.text_content() or "0").split()[0].replace(",", ""))
    assert shown >= 6
    await page.fill("#ambulance-from", (datetime.now(UTC) - timedelta(days=22)).date().isoformat())
    await page.fill("#ambulance-to", (datetime.now(UTC) - timedelta(days=18)).date().isoformat())
    await page.click("#ambulance-range button")
    await expect(page.locator("#ambulance-summary[data-ready=true]")).to_be_attached()
    later = int((await page.locator("#ambulance-summary").text_content() or "0").split()[0])
    assert 2 <= later < shown
    await _screenshot(page, "map-ambulance")
    await page.fill("#ambulance-from", "2020-01-01")
    await page.click("#ambulance-range button")
    await expect(page.locator("#ambulance-summary")).to_contain_text("at most 92 days")
    page.console_errors.clear()  # type: ignore[attr-defined]  # that refusal, on purpose

    await page.click("header nav >> text=Situation centre")
    await expect(page.locator("#placement")).to_contain_text("median")
    await expect(page.locator("#hospital-days")).to_contain_text("City Hospital 2")
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_operations_plan_a_district_draw_an_area_and_see_clean_zones_on_the_map(
    browser: Browser, platform: Platform
) -> None:
    assert platform.services is not None
    services = platform.services
    district, _ = await make_district(services, sectors=3)
    page = await _browser_login(browser, platform, await _user(platform, "operations"))
    await _drawing_over(page, district)
    await page.click("header nav >> text=Brigades")
    name = f"Brigade {secrets.token_hex(3)}"
    await page.fill("#new-brigade input[name=name]", name)
    await page.select_option("#new-brigade select[name=district]", district)
    await page.click("#new-brigade button")
    await expect(page.locator("#notice")).to_contain_text(name)
    await page.locator("#brigades tr", has_text=name).locator("button").click()
    await expect(page.locator("#invite-link")).to_contain_text("start=brg_")

    await page.select_option("#plan select[name=brigade]", label=f"{name} ({district})")
    await page.fill("#plan input[name=count]", "2")
    await page.click("#plan-submit")
    await expect(page.locator("#notice")).to_contain_text("2 sectors planned")
    await expect(page.locator("#tasks")).to_contain_text(f"{district} sector 1")

    await expect(page.locator("#draw-map[data-ready=true]")).to_be_attached()
    await page.locator("#draw-map").scroll_into_view_if_needed()
    box = await page.locator("#draw-map").bounding_box()
    assert box is not None
    for n, (dx, dy) in enumerate(((0.3, 0.5), (0.5, 0.45), (0.7, 0.5)), start=1):
        await page.mouse.click(box["x"] + box["width"] * dx, box["y"] + box["height"] * dy)
        await expect(page.locator(f"#draw-map[data-points='{n}']")).to_be_attached()
    await page.select_option("#plan select[name=brigade]", label=f"{name} ({district})")
    await page.fill("#plan input[name=area_name]", "Abay avenue")
    await page.click("#plan-submit")
    await expect(page.locator("#notice")).to_contain_text("Task 3 (Abay avenue)")
    await _screenshot(page, "brigades")

    brigade = next(b for b in await services.brigades.brigades() if b.name == name)
    member = random.randint(10**9, 2 * 10**9)
    await services.brigades.join(await services.brigades.invite(brigade.id, by="t"), member, "M")
    today = datetime.now(ZoneInfo(platform.settings.city_timezone)).date()  # the page's day
    first = (await services.brigades.tasks_of(member, today))[0]
    await services.brigades.start(first.id, member)
    (west, south), *_ = first.area["coordinates"][0]
    for lane in range(10):
        for step in (0, 100, 200):
            minutes_ago = 60 - lane * 3 - step / 100
            at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
            await services.brigades.record_fix(
                live_fix(member, at, south + (10 + 20 * lane) * M_LAT, west + step * M_LON)
            )
    await services.brigades.add_photo(first.id, member, "photo")
    await services.brigades.done(first.id, member)

    await page.click("header nav >> text=Map")
    await expect(page.locator("#clean-summary[data-ready=true]")).to_contain_text("treated")
    await _screenshot(page, "map-clean-zones")
    await page.click("header nav >> text=Brigades")
    await expect(page.locator(f"#task-{first.id}")).to_contain_text("done")
    assert page.console_errors == []  # type: ignore[attr-defined]
