"""The public permit check page in a real browser, and its rate limit over HTTP."""

import secrets
from datetime import UTC, datetime, timedelta

from aiohttp import ClientSession
from playwright.async_api import Browser, expect

from citybots.platform import Platform
from presentation.i18n import text
from tests.factories import add_org, add_pcr, add_permit, make_iin


async def _fresh_quota(platform: Platform) -> None:
    assert platform.redis is not None
    async for key in platform.redis.scan_iter("rate:public-check:*"):
        await platform.redis.delete(key)


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
    assert platform.services is not None
    warnings = await platform.services.permits.pool.fetch(
        "SELECT actor, details FROM audit_log WHERE action = 'quota.warning' "
        "AND subject = 'public-check' AND at > now() - interval '1 minute'"
    )
    assert len(warnings) == 1  # at 80% of the quota, once
    assert warnings[0]["actor"].isalnum()  # a keyed hash of the address, not the address


async def test_a_loosely_typed_plate_is_not_a_yes_on_the_public_page(platform: Platform) -> None:
    assert platform.services is not None
    await _fresh_quota(platform)
    digits = f"{secrets.randbelow(800) + 200}"
    await add_permit(platform.services, await add_org(platform.services), plate=f"{digits} ABC 02")
    answers = []
    async with ClientSession() as http:
        for typed in (f"{digits} ABC 02", f"{digits} A8C 2"):
            async with http.post(f"{platform.base_url}/check?lang=en", data={"value": typed}) as r:
                answers.append(await r.text())
    assert text("en", "public_check.yes") in answers[0]
    assert text("en", "public_check.no") in answers[1]


async def test_a_suspended_permit_is_a_plain_no_on_the_public_page(platform: Platform) -> None:
    assert platform.services is not None
    await _fresh_quota(platform)
    holder, nobody = make_iin(), make_iin()
    await add_permit(platform.services, await add_org(platform.services), iin=holder)
    past = datetime.now(UTC) - timedelta(days=15)  # isolation over, not yet lifted
    await add_pcr(platform.services, holder, "positive", result_at=past)
    async with ClientSession() as http:

        async def answer(value: str) -> str:
            async with http.post(f"{platform.base_url}/check?lang=en", data={"value": value}) as r:
                return (await r.text()).replace(value, "")

        suspended, unknown = await answer(holder), await answer(nobody)
        await add_pcr(platform.services, holder, "negative")  # after the isolation: lifted
        lifted = await answer(holder)
    assert text("en", "public_check.no") in suspended
    assert suspended == unknown  # nothing beyond the no an unknown person gets
    assert text("en", "public_check.yes") in lifted
