"""A person talks to the bots through the sandbox page, in a real browser."""

import os
import secrets
from datetime import date, timedelta

from aiogram.types import BufferedInputFile
from playwright.async_api import Browser, Dialog, Page, expect

from bots.sandbox.client import SandboxChat, SandboxClient
from citybots.platform import Platform
from presentation.i18n import text
from services.validation import Coordinates
from tests.factories import add_org, make_iin


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


async def _page_user(page: Page, platform: Platform, bot: str) -> int:
    """A new user on the sandbox page, talking to ``bot``; their id."""
    await page.goto(f"{platform.base_url}/sandbox/")
    await page.select_option("#lang", "en")
    await page.click("#new")
    await expect(page.locator("#who")).to_contain_text("user ")
    await page.select_option("#bot", f"citybots_{bot}_bot")
    await page.fill("#text", "/start")
    await page.press("#text", "Enter")
    await expect(page.locator(".msg").nth(1)).to_be_visible()
    return int((await page.locator("#who").inner_text()).split()[1])


async def test_documents_open_or_download_from_the_sandbox_page_and_never_run_there(
    browser: Browser, platform: Platform
) -> None:
    page = await browser.new_page()
    user_id = await _page_user(page, platform, "staff")
    bot = platform.bots["staff"].bot
    poster = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
        b"<script>parent.document.title = 'ran'; document.title = 'ran'</script>"
        b'<rect width="40" height="40" fill="green"/></svg>'
    )
    await bot.send_document(user_id, BufferedInputFile(poster, "entry-poster.svg"))
    await bot.send_document(user_id, BufferedInputFile(b"iin,state\n1,ok\n", "report.csv"))
    svg_link = page.locator(".msg a.doc", has_text="entry-poster.svg")
    csv_link = page.locator(".msg a.doc", has_text="report.csv")
    await expect(svg_link).to_be_visible()
    await expect(csv_link).to_be_visible()

    async with page.expect_popup() as opened:
        await svg_link.click()
    popup = await opened.value
    await popup.wait_for_load_state()
    assert popup.url.startswith(f"{platform.base_url}/sandbox/api/files/")
    assert await popup.title() != "ran"  # the poster's script never ran
    assert await page.title() == "citybots sandbox"
    await popup.close()

    response = await page.request.get(await csv_link.evaluate("a => a.href"))
    assert response.headers["content-disposition"] == 'attachment; filename="report.csv"'
    assert "sandbox" in response.headers["content-security-policy"]
    assert await response.body() == b"iin,state\n1,ok\n"
    await page.close()


async def test_a_head_sends_a_csv_of_permits_from_the_sandbox_page(
    browser: Browser, platform: Platform
) -> None:
    assert platform.services is not None
    phone = f"+7701{secrets.randbelow(10**7):07d}"
    bin_ = await add_org(platform.services, head_phone=phone, name="Page Bakery LLP")
    page = await browser.new_page()
    user_id = await _page_user(page, platform, "citizen")
    async with SandboxClient(f"{platform.base_url}/sandbox") as client:
        head = SandboxChat(client, "citizen", user_id)
        await head.reply()
        for step in (text("en", "citizen_menu.apply"), bin_):
            await head.send(step)
            await head.reply()
        await head.send_contact(phone)
        await head.replies(2)
        for button in (
            text("en", "apply.new"),
            text("en", "permit.register.city"),
            text("en", "apply.purpose.work"),
            text("en", "apply.days", days=7),
        ):
            await head.press(button)
            await head.reply()
    await expect(page.locator(".msg").last).to_have_text(text("en", "apply.ask_items"))
    csv = f"iin,plate\n{make_iin()},\n,{secrets.randbelow(900) + 100} PGE 02\n"
    await page.set_input_files(
        "#file", files=[{"name": "permits.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )
    await expect(page.locator(".msg.me").last).to_contain_text("permits.csv")
    await expect(page.locator(".msg").last).to_contain_text(
        text("en", "apply.confirm", lines="", people="", vehicles="")[:14]
    )
    await page.close()
