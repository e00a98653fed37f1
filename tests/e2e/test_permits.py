"""Permit checks through the sandbox: officers in the staff bot, a citizen's own."""

from __future__ import annotations

import secrets
from datetime import timedelta

from bots.sandbox.client import SandboxClient
from citybots.platform import Platform
from citybots.wiring import Services
from flows.i18n import text
from tests.e2e.test_ashyq import _signed_up
from tests.factories import add_org, add_permit, make_iin


def _services(platform: Platform) -> Services:
    assert platform.services is not None
    return platform.services


async def test_an_officer_checks_plates_and_iins_and_others_cannot(
    sandbox: SandboxClient, platform: Platform
) -> None:
    services = _services(platform)
    bin_ = await add_org(services)
    digits = f"{secrets.randbelow(900) + 100}"
    await add_permit(services, bin_, plate=f"{digits} ABC 02")
    expired = make_iin()
    await add_permit(services, bin_, iin=expired, start=-timedelta(days=5), end=-timedelta(days=1))

    stranger = await sandbox.chat("staff")
    await stranger.send(text("en", "staff_menu.permit"))
    assert (await stranger.reply())["text"] == text("en", "permit.not_officer")

    officer = await sandbox.chat("staff", language_code="ru")
    await officer.send("/start off_forged")
    assert (await officer.reply())["text"] == text("ru", "permit.invite_invalid")
    token = await services.permits.create_officer_invite("police", created_by="test")
    await officer.send(f"/start {token}")
    assert (await officer.reply())["text"].startswith(text("ru", "permit.joined", role="x")[:20])
    await officer.send(text("ru", "staff_menu.permit"))
    assert (await officer.reply())["text"] == text("ru", "permit.ask")
    await officer.send(f"{digits} АВС 02")  # Cyrillic letters, as typed on a Russian keyboard
    valid = (await officer.reply())["text"]
    assert valid.startswith("✅")
    assert "Test LLP" in valid
    await officer.send(f"{digits} A8C 2")  # a typo and a one-digit region
    loose = (await officer.reply())["text"]
    assert loose.startswith("✅")
    assert f"{digits}ABC02" in loose
    await officer.send(expired)
    assert (await officer.reply())["text"].startswith("⛔")
    await officer.send(make_iin())
    assert (await officer.reply())["text"] == text("ru", "permit.none")
    await officer.send("hello")
    assert (await officer.reply())["text"] == text("ru", "errors.plate.format")


async def test_a_citizen_sees_their_own_permit(sandbox: SandboxClient, platform: Platform) -> None:
    services = _services(platform)
    chat, iin = await _signed_up(sandbox, platform)
    await chat.send(text("en", "citizen_menu.permit"))
    assert (await chat.reply())["text"] == text("en", "permit.none")
    await add_permit(services, await add_org(services), iin=iin)
    await chat.send("/permit")
    assert (await chat.reply())["text"].startswith("✅ VALID permit (city movement): Test LLP")
    fresh = await sandbox.chat("citizen")
    await fresh.send("/permit")
    assert (await fresh.reply())["text"] == text("en", "permit.mine_unlinked")
