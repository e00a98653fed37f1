"""A person talks to the bots through the sandbox page, in a real browser."""

import os

from playwright.async_api import Browser, expect

from citybots.platform import Platform
from flows.i18n import text


async def test_a_person_can_talk_to_a_bot_in_the_sandbox_page(
    browser: Browser, platform: Platform
) -> None:
    page = await browser.new_page()
    await page.goto(f"{platform.base_url}/sandbox/")
    await page.select_option("#lang", "en")
    await page.click("#new")
    await page.select_option("#bot", "citybots_citizen_bot")
    await page.fill("#text", "/start")
    await page.press("#text", "Enter")
    await expect(page.locator(".msg").last).to_contain_text("city's epidemic-response assistant")
    await page.locator("#reply-kb button", has_text=text("en", "menu.language")).click()
    await page.locator(".msg button", has_text="Қазақша").click()
    await expect(page.locator(".msg").last).to_have_text(text("kk", "language.changed"))
    await expect(page.locator("#reply-kb button").first).to_have_text(
        text("kk", "citizen_menu.status")
    )
    if os.environ.get("CITYBOTS_SCREENSHOTS"):
        await page.screenshot(path=os.environ["CITYBOTS_SCREENSHOTS"] + "/sandbox.png")
    await page.close()


async def test_the_front_page_links_to_health_and_the_sandbox(
    browser: Browser, platform: Platform
) -> None:
    page = await browser.new_page()
    await page.goto(f"{platform.base_url}/")
    await page.click("text=/sandbox/")
    await expect(page).to_have_title("citybots sandbox")
    await page.close()
