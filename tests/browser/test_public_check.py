"""The public permit check page in a real browser, and its rate limit over HTTP."""

import hashlib

from aiohttp import ClientSession
from playwright.async_api import Browser, expect

from citybots.platform import Platform
from flows.i18n import text
from tests.factories import add_org, add_permit, make_iin


async def _fresh_quota(platform: Platform) -> None:
    assert platform.redis is not None
    client = hashlib.sha256(b"127.0.0.1").hexdigest()[:16]
    await platform.redis.delete(f"rate:public-check:{client}")


async def test_the_public_check_says_only_yes_or_no(browser: Browser, platform: Platform) -> None:
    assert platform.services is not None
    await _fresh_quota(platform)
    holder = make_iin()
    await add_permit(platform.services, await add_org(platform.services), iin=holder)
    page = await browser.new_page()
    await page.goto(f"{platform.base_url}/check?lang=en")
    await expect(page).to_have_title(text("en", "public_check.title"))
    for value, expected in (
        (holder, text("en", "public_check.yes")),
        (make_iin(), text("en", "public_check.no")),
        ("hello", text("en", "errors.plate.format")),
    ):
        await page.fill("#value", value)
        await page.click("button")
        await expect(page.locator("#answer")).to_have_text(expected)
    assert "Test LLP" not in await page.content()  # yes or no, nothing about whose permit
    await page.close()


async def test_the_public_check_is_rate_limited(platform: Platform) -> None:
    await _fresh_quota(platform)
    statuses = []
    async with ClientSession() as http:
        for _ in range(31):
            async with http.post(f"{platform.base_url}/check", data={"value": make_iin()}) as r:
                statuses.append(r.status)
                assert r.headers["Cache-Control"] == "no-store"
    assert statuses[:30] == [200] * 30
    assert statuses[30] == 429
