"""A person talks to the bots through the sandbox page, in a real browser."""

import os
import secrets
from datetime import date, timedelta

from playwright.async_api import Browser, Dialog, expect

from citybots.platform import Platform
from flows.i18n import text
from services.validation import Coordinates


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
    assert platform.services is not None
    name = f"trainer-{secrets.token_hex(3)}"
    await platform.services.panel.create_user(name, "analyst", "a long enough password", actor="t")
    page = await browser.new_page()
    await page.goto(f"{platform.base_url}/")
    await page.fill("#username", name)
    await page.fill("#password", "a long enough password")
    await page.click("button[type=submit]")
    await page.click("text=/sandbox/")
    await expect(page).to_have_title("citybots sandbox")
    await page.close()


async def test_a_patient_shares_and_moves_a_live_location_in_the_sandbox_page(
    browser: Browser, platform: Platform
) -> None:
    assert platform.services is not None
    q = platform.services.quarantine
    doctor = secrets.randbelow(10**9) + 10**9
    await q.join_as_doctor(await q.create_doctor_invite("Almaly", created_by="test"), doctor, "D")
    case = await q.enrol(
        doctor,
        isolation_end=date.today() + timedelta(days=7),
        home=Coordinates(43.2389, 76.8897),
    )
    page = await browser.new_page()
    answers: list[str] = []

    async def answer(dialog: Dialog) -> None:
        await dialog.accept(answers.pop(0))

    page.on("dialog", answer)
    await page.goto(f"{platform.base_url}/sandbox/")
    await page.select_option("#lang", "en")
    await page.click("#new")
    await page.select_option("#bot", "citybots_quarantine_bot")
    await page.fill("#text", f"/start {case.invite_token}")
    await page.press("#text", "Enter")
    await page.locator(".msg button", has_text=text("en", "quarantine.agree")).click()
    answers.append("+77015550101")
    await page.locator("#reply-kb button", has_text=text("en", "quarantine.share_phone")).click()
    await expect(page.locator(".msg").last).to_contain_text("LIVE location")
    answers.append("43.2389, 76.8897")
    await page.click("#live")
    await expect(page.locator(".msg").last).to_contain_text("your live location is arriving")
    for north in ("60, 0, 8", "65, 0, 8"):
        answers.append(north)
        await page.click("#move")
    warning = text("en", "quarantine.patient.left_home", distance=65)
    await expect(page.locator(".msg").last).to_have_text(warning, timeout=15_000)
    moved = page.locator(".msg.me").last
    await expect(moved).to_contain_text("📡 live 📍 43.23948, 76.88970 ±8 m")
    if os.environ.get("CITYBOTS_SCREENSHOTS"):
        await page.screenshot(path=os.environ["CITYBOTS_SCREENSHOTS"] + "/quarantine.png")
    await page.close()
