"""The News page in a real browser: an editor writes an item, previews it as Telegram
shows it with the send's duration, publishes it and follows the send."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from citybots.platform import Platform
from presentation.i18n import text
from tests.browser.test_panel import _browser_login, _screenshot, _user


async def test_an_editor_writes_previews_and_publishes_a_news_item(
    browser: Browser, platform: Platform
) -> None:
    page = await _browser_login(browser, platform, await _user(platform, "communications"))
    await page.goto(f"{platform.base_url}/news")
    await page.click("#write button[type=submit]")  # empty: the browser asks for the texts
    await expect(page).to_have_url(f"{platform.base_url}/news")
    await page.fill("#text-ru", "Парки открываются с понедельника.")
    await page.fill("#text-kk", "Саябақтар дүйсенбіден ашылады.")
    await page.fill("#text-en", "Parks open on Monday.\nKeep your distance.")
    await page.click("#write button[type=submit]")
    await expect(page.locator("#preview-kk")).to_contain_text("Саябақтар дүйсенбіден ашылады.")
    await expect(page.locator("#preview-en")).to_contain_text(text("en", "news.stop_button"))
    await expect(page.locator("#estimate")).to_contain_text("under a minute")
    await _screenshot(page, "news-preview")
    await page.click("#publish button[type=submit]")
    await expect(page.locator("#progress")).to_contain_text("Published")
    await expect(page.locator("#send-queued")).to_contain_text("subscriber(s)")
    await expect(page.locator("#send-left")).to_be_visible()
    await _screenshot(page, "news-published")
    await page.goto(f"{platform.base_url}/news")
    await expect(page.locator("#items")).to_contain_text("Парки открываются")
    assert page.console_errors == []  # type: ignore[attr-defined]


async def test_an_analyst_cannot_open_the_news(browser: Browser, platform: Platform) -> None:
    page = await _browser_login(browser, platform, await _user(platform, "analyst"))
    answer = await page.goto(f"{platform.base_url}/news")
    assert answer is not None
    assert answer.status == 403
