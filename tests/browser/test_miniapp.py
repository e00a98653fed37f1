"""The citizen bot's Mini App in Chromium, opened from the sandbox page's panel with
initData signed as Telegram signs it: the live pass, the refusal screen, forged and stale
openings refused."""

import os
import re
import time

from playwright.async_api import Browser, FrameLocator, Page, expect

from bots.sandbox.client import SandboxClient
from citybots.platform import Platform
from citybots.wiring import Services
from presentation.i18n import text
from services.citizens import mask_iin
from tests.factories import Door, add_pcr, open_venue, registered_phone


async def _linked_user(page: Page, platform: Platform, result: str) -> tuple[int, str]:
    """A new sandbox user on the page, linked to a fresh IIN with a PCR ``result``."""
    services = platform.services
    assert isinstance(services, Services)
    await expect(page.locator("#who")).to_contain_text("user ")  # the page's first user
    before = await page.locator("#who").inner_text()
    await page.click("#new")
    await expect(page.locator("#who")).not_to_have_text(before)
    found = re.search(r"user (\d+)", await page.locator("#who").inner_text())
    assert found is not None
    user_id = int(found.group(1))
    iin, phone = await registered_phone(services)
    await services.citizens.link(user_id, iin, phone)
    await add_pcr(services, iin, result)
    return user_id, iin


async def _sandbox_page(browser: Browser, platform: Platform) -> Page:
    page = await browser.new_page()
    await page.goto(f"{platform.base_url}/sandbox/")
    await page.select_option("#lang", "en")
    await page.select_option("#bot", "citybots_citizen_bot")
    return page


async def _scanned_in_the_app(
    browser: Browser, platform: Platform, result: str
) -> tuple[Page, FrameLocator, Door, str]:
    """A new user on the sandbox page, linked with a PCR ``result``, opened the Mini App
    with a new venue's entry code: the page, the Mini App's frame, the venue, the IIN."""
    door = await open_venue(platform.services)
    page = await _sandbox_page(browser, platform)
    _, iin = await _linked_user(page, platform, result)
    await page.fill("#miniapp-start", door.entry)
    await page.click("#miniapp-open")
    return page, page.frame_locator("#miniapp-frame"), door, iin


async def _shows(app: FrameLocator, screen: str, colour: str, headline: str) -> None:
    """The Mini App shows that screen in that colour under that headline (a key)."""
    await expect(app.locator("body")).to_have_attribute("data-screen", screen)
    await expect(app.locator("body")).to_have_attribute("data-colour", colour)
    await expect(app.locator("#headline")).to_have_text(text("en", headline))


async def test_a_venue_code_opens_a_live_pass_beside_the_chat(
    browser: Browser, platform: Platform
) -> None:
    page, app, door, iin = await _scanned_in_the_app(browser, platform, "negative")
    await _shows(app, "pass", "green", "miniapp.admitted")
    await expect(app.locator("#venue")).to_have_text(door.venue.name)
    await expect(app.locator("#iin")).to_have_text(mask_iin(iin))
    await expect(app.locator("#name")).to_have_text("Sandbox user")
    clock = app.locator("#clock")
    await expect(clock).to_have_text(re.compile(r"^\d{1,2}:\d\d:\d\d"))
    first = await clock.inner_text()
    await expect(clock).not_to_have_text(first, timeout=10_000)  # it ticks
    background = await app.locator("body").evaluate("b => getComputedStyle(b).backgroundColor")
    assert background == "rgb(30, 158, 74)"
    animation = await app.locator(".band").evaluate("b => getComputedStyle(b).animationName")
    assert animation == "band"
    if os.environ.get("CITYBOTS_SCREENSHOTS"):
        await page.screenshot(path=os.environ["CITYBOTS_SCREENSHOTS"] + "/miniapp-pass.png")
    # the exit code, pasted as Telegram's direct link into the chat's text box
    await page.fill("#text", f"https://t.me/citybots_citizen_bot/pass?startapp={door.exit}")
    await page.press("#text", "Enter")
    await expect(app.locator("#headline")).to_have_text(text("en", "miniapp.checked_out"))
    await page.close()


async def test_a_red_person_sees_the_refusal_screen_and_my_status_opens_the_pass(
    browser: Browser, platform: Platform
) -> None:
    page, app, _, _ = await _scanned_in_the_app(browser, platform, "positive")
    await _shows(app, "refused", "red", "miniapp.refused")
    if os.environ.get("CITYBOTS_SCREENSHOTS"):
        await page.screenshot(path=os.environ["CITYBOTS_SCREENSHOTS"] + "/miniapp-refused.png")
    await page.click("#miniapp-close")
    await page.fill("#text", text("en", "citizen_menu.status"))
    await page.press("#text", "Enter")
    await page.locator(".msg button", has_text=text("en", "miniapp.open_pass")).click()
    await expect(app.locator("body")).to_have_attribute("data-screen", "status")
    await expect(app.locator("#headline")).to_have_text(text("en", "colour.red"))
    await page.close()


async def test_a_forged_or_stale_opening_is_refused_in_the_page(
    browser: Browser, platform: Platform
) -> None:
    page = await browser.new_page()
    async with SandboxClient(f"{platform.base_url}/sandbox") as sandbox:
        chat = await sandbox.chat("citizen", language_code="en")
        fresh = await chat.open_web_app()
        max_age = platform.settings.miniapp_init_data_max_age_seconds
        stale = await chat.open_web_app(auth_date=int(time.time()) - max_age - 5)
    forged = fresh["url"].replace(str(chat.user_id), str(chat.user_id + 1), 1)
    assert forged != fresh["url"]
    for url, key in ((forged, "miniapp.forged"), (stale["url"], "miniapp.stale")):
        await page.goto(url)
        await expect(page.locator("body")).to_have_attribute("data-screen", "error")
        await expect(page.locator("#message")).to_have_text(text("en", key))
        await expect(page.locator("#clock")).to_have_text("")
    await page.goto(fresh["url"].split("#")[0])  # no initData at all: not from Telegram
    await expect(page.locator("#message")).to_have_text(text("en", "miniapp.forged"))
    await page.close()
