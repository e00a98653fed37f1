"""Permit checks through the sandbox: officers in the staff bot, a citizen's own."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from bots.sandbox.client import SandboxClient
from citybots.wiring import Services
from presentation.i18n import LANGUAGES, text
from tests.factories import (
    add_contact,
    add_org,
    add_pcr,
    add_permit,
    joined_officer,
    make_iin,
    signed_up,
)


async def test_an_officer_checks_plates_and_iins_and_others_cannot(
    sandbox: SandboxClient, services: Services
) -> None:
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


def colour_words() -> list[str]:
    """How red and yellow are named in every language, to make sure none is shown."""
    return [text(lang, f"colour.{c}").lower() for lang in LANGUAGES for c in ("red", "yellow")]


def suspended_words(lang: str, register: str) -> str:
    """What an officer is told of a suspended permit of "Test LLP" on that register."""
    return text(
        lang,
        "permit.suspended",
        register=text(lang, f"permit.register.{register}"),
        organisation="Test LLP",
    )


async def test_an_officer_hears_a_red_or_yellow_holders_permit_is_suspended_never_the_colour(
    sandbox: SandboxClient, services: Services
) -> None:
    bin_ = await add_org(services)
    red, yellow, driver = make_iin(), make_iin(), make_iin()
    plate = f"{secrets.randbelow(900) + 100} KZD 02"
    for iin in (red, yellow):
        await add_permit(services, bin_, iin=iin)
    await add_permit(services, bin_, iin=driver, plate=plate)  # a driver with the car
    # Red since a positive result 15 days ago (isolation over, not yet lifted by a
    # negative result); yellow as a registered contact; the driver red since today.
    await add_pcr(services, red, "positive", result_at=datetime.now(UTC) - timedelta(days=15))
    await add_contact(services, yellow)
    await add_pcr(services, driver, "positive")

    officer = await joined_officer(
        sandbox, services, "police", lang="ru", menu="staff_menu.permit"
    )
    suspended = suspended_words("ru", "city")
    answers = []
    for value in (red, yellow, plate):
        await officer.send(value)
        answers.append((await officer.reply())["text"])
    assert answers == [suspended] * 3  # the same words for red and yellow, by IIN or plate
    assert not any(word in suspended.lower() for word in colour_words())

    await add_pcr(services, red, "negative")  # the status lifts: valid again by itself
    await officer.send(red)
    assert (await officer.reply())["text"].startswith("✅")


async def test_a_citizen_sees_their_own_permit(sandbox: SandboxClient, services: Services) -> None:
    chat, iin = await signed_up(sandbox, services)
    await chat.send(text("en", "citizen_menu.permit"))
    assert (await chat.reply())["text"] == text("en", "permit.none")
    await add_permit(services, await add_org(services), iin=iin)
    await chat.send("/permit")
    assert (await chat.reply())["text"].startswith("✅ VALID permit (city movement): Test LLP")
    fresh = await sandbox.chat("citizen")
    await fresh.send("/permit")
    assert (await fresh.reply())["text"] == text("en", "permit.mine_unlinked")


async def test_a_permits_purpose_is_shown_by_its_name_in_the_readers_language(
    sandbox: SandboxClient, services: Services
) -> None:
    chat, iin = await signed_up(sandbox, services)
    await add_permit(services, await add_org(services), iin=iin, purpose="medical")
    await chat.send("/permit")
    answer = (await chat.reply())["text"]
    assert f"purpose: {text('en', 'apply.purpose.medical')};" in answer
    assert "medical;" not in answer

    officer = await joined_officer(
        sandbox, services, "police", lang="ru", menu="staff_menu.permit"
    )
    await officer.send(iin)
    answer = (await officer.reply())["text"]
    assert f"цель: {text('ru', 'apply.purpose.medical')};" in answer


async def test_an_invite_opened_in_the_wrong_bot_says_which_bot_and_stays_usable(
    sandbox: SandboxClient, services: Services
) -> None:
    agent_invite = await services.permits.create_officer_invite("agent", created_by="test")
    police_invite = await services.permits.create_officer_invite("police", created_by="test")
    person = await sandbox.chat("staff", language_code="kk")
    await person.send(f"/start {agent_invite}")
    assert (await person.reply())["text"] == text("kk", "permit.invite_other_bot.agent")
    await person.send(text("kk", "staff_menu.permit"))
    assert (await person.reply())["text"] == text("kk", "permit.not_officer")

    in_agent_bot = await sandbox.chat("agent", user_id=person.user_id, language_code="kk")
    await in_agent_bot.send(f"/start {police_invite}")
    assert (await in_agent_bot.reply())["text"] == text("kk", "permit.invite_other_bot.staff")
    await in_agent_bot.send(f"/start {agent_invite}")  # kept: it still works in its own bot
    assert (await in_agent_bot.reply())["text"] == text("kk", "agent.joined")
    await in_agent_bot.send(f"/start {agent_invite}")  # and then it is used up
    assert (await in_agent_bot.reply())["text"] == text("kk", "permit.invite_invalid")

    await person.send(f"/start {police_invite}")  # the police invite was kept too
    assert (await person.reply())["text"].startswith(text("kk", "permit.joined", role="")[:10])
