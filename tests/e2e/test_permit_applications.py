"""Applying for permits through the sandbox, as an organisation's head: proof by BIN and
phone, typed lines and a CSV upload with bad rows, automatic approval, the quota, a
person in quarantine, duplicates, and what the head sees afterwards."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bots.sandbox.client import SandboxChat, SandboxClient, buttons
from citybots.platform import Platform
from citybots.wiring import Services
from presentation.i18n import plural, text
from services.permits import PermitError, PermitResult
from tests.e2e.test_permits import colour_words
from tests.factories import (
    add_contact,
    add_org,
    add_pcr,
    applied_from_the_panel,
    make_iin,
    make_phone,
)


def _plate() -> str:
    return f"{secrets.randbelow(900) + 100} ABC 02"


async def _become_head(head: SandboxChat, bin_: str, phone: str, lang: str = "en") -> str:
    await head.send(text(lang, "citizen_menu.apply"))
    assert (await head.reply())["text"] == text(lang, "apply.ask_bin")
    await head.send(bin_)
    assert (await head.reply())["text"] == text(lang, "apply.ask_phone")
    await head.send_contact(phone)
    confirmed, answer = await head.replies(2)
    assert "keyboard" in confirmed["reply_markup"]  # the main menu, not the phone button
    assert text(lang, "apply.new") in buttons(answer)
    return str(answer["text"])


async def _fill_form(head: SandboxChat, lang: str = "en") -> None:
    await head.press(text(lang, "apply.new"))
    await head.reply()
    await head.press(text(lang, "permit.register.city"))
    await head.reply()
    await head.press(text(lang, "apply.purpose.work"))
    await head.reply()
    await head.press(text(lang, "apply.days", days=7))
    assert (await head.reply())["text"] == text(lang, "apply.ask_items")


async def test_a_head_proves_who_they_are_and_gets_permits_at_once(
    sandbox: SandboxClient, services: Services
) -> None:
    phone = make_phone()
    bin_ = await add_org(services, head_phone=phone, name="Bakery LLP")
    head = await sandbox.chat("citizen")
    await head.send(text("en", "citizen_menu.apply"))
    await head.reply()
    await head.send("12345")
    assert (await head.reply())["text"] == text("en", "errors.bin.length")
    await head.send(bin_)
    await head.reply()
    await head.send_contact(make_phone())  # not the head's number on the register
    assert (await head.reply())["text"] == text("en", "apply.not_head")
    assert "Bakery LLP" in await _become_head(head, bin_, phone)

    await _fill_form(head)
    driver, walker, plate_only = make_iin(), make_iin(), _plate()
    driven = _plate()
    await head.send(f"{walker}\n{driver}, {driven}\n12345\n\n{plate_only}\n123456789012")
    bad, confirm = await head.replies(2)
    assert "line 3" in bad["text"]
    assert "line 6" in bad["text"]
    assert (
        confirm["text"] == "Ready to send: 3 lines (2 people, 2 vehicles). Send the application?"
    )
    await head.press(text("en", "apply.submit"))
    outcome = (await head.reply())["text"]
    assert text("en", "apply.outcome_approved", count=3) in outcome

    now = datetime.now(UTC)
    check = await services.permits.check_iin(driver, at=now, actor="test")
    assert check.result is PermitResult.VALID
    assert check.organisation == "Bakery LLP"
    assert check.purpose == "work"
    by_plate = await services.permits.check_plate(plate_only, at=now, actor="test")
    assert by_plate.result is PermitResult.VALID

    await head.press(text("en", "apply.list"))
    listing = (await head.reply())["text"]
    assert listing.count(text("en", "apply.state.valid")) == 3
    assert driver not in listing  # the IINs are masked in the chat
    assert driver[-4:] in listing


async def test_the_head_sees_in_our_permits_which_are_suspended_by_the_health_registry(
    sandbox: SandboxClient, services: Services
) -> None:
    phone = make_phone()
    bin_ = await add_org(services, head_phone=phone)
    head = await sandbox.chat("citizen", language_code="kk")
    await _become_head(head, bin_, phone, "kk")
    await _fill_form(head, "kk")
    red, yellow, well = make_iin(), make_iin(), make_iin()
    await head.send(f"{red}, {_plate()}\n{yellow}\n{well}")
    await head.reply()
    await head.press(text("kk", "apply.submit"))
    assert text("kk", "apply.outcome_approved", count=3) in (await head.reply())["text"]
    await add_pcr(services, red, "positive")
    await add_contact(services, yellow)

    await head.press(text("kk", "apply.list"))
    listing = (await head.reply())["text"]
    line_of = {
        iin: next(line for line in listing.splitlines() if iin[-4:] in line)
        for iin in (red, yellow, well)
    }
    suspended = text("kk", "apply.state.suspended")
    assert suspended in line_of[red]
    assert suspended in line_of[yellow]
    assert line_of[well].startswith(text("kk", "apply.state.valid"))
    assert not any(word in listing.lower() for word in colour_words())


async def test_a_refused_organisation_cannot_apply(
    sandbox: SandboxClient, services: Services
) -> None:
    phone = make_phone()
    bin_ = await add_org(services, head_phone=phone, allowed=False)
    head = await sandbox.chat("citizen", language_code="ru")
    shown = await _become_head(head, bin_, phone, "ru")
    assert text("ru", "apply.org_not_allowed_note", code="10.71") in shown
    await head.press(text("ru", "apply.new"))
    assert (await head.reply())["text"] == text("ru", "apply.org_not_allowed_note", code="10.71")


async def test_a_csv_upload_with_bad_rows_quarantine_duplicates_and_the_quota(
    sandbox: SandboxClient, services: Services
) -> None:
    phone = make_phone()
    bin_ = await add_org(services, head_phone=phone, quota=2)
    red = make_iin()
    await add_pcr(services, red, "positive")
    first, second, third = make_iin(), make_iin(), make_iin()
    head = await sandbox.chat("citizen")
    await _become_head(head, bin_, phone)
    await _fill_form(head)
    await head.send_document(
        "staff.csv",
        "iin;plate\n"
        f"{first};\n{second};{_plate()}\n{third};\n"
        "12345678901;\n"  # too short
        "=HYPERLINK(1);\n"  # a formula, not an IIN
        f"{red};\n{first};\n",
    )
    bad, confirm = await head.replies(2)
    assert "line 5" in bad["text"]
    assert "line 6" in bad["text"]
    assert confirm["text"].startswith("Ready to send: 5 lines (5 people, 1 vehicle).")
    await head.press(text("en", "apply.submit"))
    outcome = (await head.reply())["text"]
    assert text("en", "apply.outcome_approved", count=2) in outcome
    assert text("en", "apply.outcome_waiting", count=1) in outcome
    assert text("en", "apply.outcome_rejected", count=2) in outcome
    assert text("en", "apply.rule.quota") in outcome
    assert text("en", "apply.rule.quarantine") in outcome
    assert text("en", "apply.rule.duplicate") in outcome

    now = datetime.now(UTC)
    assert (await services.permits.check_iin(red, at=now, actor="t")).result is (
        PermitResult.REJECTED
    )
    assert (await services.permits.check_iin(third, at=now, actor="t")).result is (
        PermitResult.PENDING
    )
    waiting = [p for p in await services.applications.waiting(now=now) if p.iin == third]
    assert waiting[0].failed_rules == ["quota"]
    later_red = make_iin()
    await add_pcr(services, later_red, "negative")
    await applied_from_the_panel(services, bin_, [later_red], purpose="work", days=2, now=now)
    (queued,) = [p for p in await services.applications.waiting(now=now) if p.iin == later_red]
    await add_pcr(services, later_red, "positive")
    with pytest.raises(PermitError, match=r"apply\.quarantine_now"):
        await services.applications.decide(queued.id, approve=True, officer="o", reason="")
    await services.applications.decide(waiting[0].id, approve=True, officer="officer", reason="")
    assert (await services.permits.check_iin(third, at=now, actor="t")).result is (
        PermitResult.VALID
    )
    approved = [
        p
        for p in await services.applications.permits_of(bin_, now=now)
        if p.iin == first and p.state is PermitResult.VALID
    ]
    await services.applications.decide(
        approved[0].id, approve=False, officer="officer", reason="left the company"
    )
    assert (await services.permits.check_iin(first, at=now, actor="t")).result is (
        PermitResult.REVOKED
    )
    await head.press(text("en", "apply.list"))
    listing = (await head.reply())["text"]
    assert text("en", "apply.state.revoked") in listing
    assert "left the company" in listing
    assert text("en", "apply.state.rejected") in listing


async def test_a_window_in_the_past_or_too_long_is_refused_clearly(
    sandbox: SandboxClient, platform: Platform, services: Services
) -> None:
    phone = make_phone()
    bin_ = await add_org(services, head_phone=phone)
    head = await sandbox.chat("citizen")
    await _become_head(head, bin_, phone)
    await head.press(text("en", "apply.new"))
    await head.reply()
    await head.press(text("en", "permit.register.roadblock"))
    await head.reply()
    await head.press(text("en", "apply.purpose.medical"))
    await head.reply()
    await head.send("01.01.2020 - 02.01.2020")
    assert (await head.reply())["text"] == text("en", "errors.apply.window_past")
    today = datetime.now(ZoneInfo(platform.settings.city_timezone)).date()
    await head.send(f"{today:%d.%m.%Y} - {today.replace(year=today.year + 1):%d.%m.%Y}")
    assert (await head.reply())["text"] == plural("en", "errors.apply.window_too_long", 30)
    await head.send("next week")
    assert (await head.reply())["text"] == text("en", "errors.apply.window_format")
