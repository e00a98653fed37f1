"""Checkpoint logging through the sandbox: an officer assigned by invite logs passings in
both directions (a plate typed in Cyrillic with a permit, an IIN without one into a
quarantine zone, flagged), and a traveller registers by the QR code and a phone only."""

from __future__ import annotations

import secrets

from bots.sandbox.client import SandboxClient, buttons
from citybots.wiring import Services
from presentation.i18n import text
from tests.e2e.test_permits import colour_words, suspended_words
from tests.factories import (
    add_org,
    add_pcr,
    add_permit,
    add_zone_with_checkpoint,
    joined_officer,
    make_iin,
    make_phone,
)


async def test_an_officer_logs_passings_both_ways_and_a_traveller_registers(
    sandbox: SandboxClient, services: Services
) -> None:
    name, post = await add_zone_with_checkpoint(
        services, f"North gate {secrets.token_hex(2)}", latitude=43.27, longitude=76.91
    )
    digits = f"{secrets.randbelow(900) + 100}"
    await add_permit(
        services,
        await add_org(services),
        plate=f"{digits} ABC 02",
        register="roadblock",
        purpose="delivery",
    )

    officer = await sandbox.chat("staff")
    await officer.send(text("en", "staff_menu.passing"))
    assert (await officer.reply())["text"] == text("en", "permit.not_officer")
    token = await services.permits.create_officer_invite(
        "checkpoint", created_by="test", checkpoint_id=post.id
    )
    await officer.send(f"/start {token}")
    await officer.reply()
    await officer.send(text("en", "staff_menu.passing"))
    ask = await officer.reply()
    assert ask["text"] == text("en", "checkpoint.ask_direction", checkpoint=post.name)
    await officer.press(text("en", "checkpoint.direction.in"))
    await officer.reply()
    await officer.send(f"{digits} АВС 02")  # Cyrillic letters
    allowed = (await officer.reply())["text"]
    assert "✅" in allowed
    assert f"purpose: {text('en', 'apply.purpose.delivery')};" in allowed  # a name, not a code
    assert "🚩" not in allowed
    stranger = make_iin()
    await officer.send(stranger)
    flagged = (await officer.reply())["text"]
    assert text("en", "permit.none") in flagged
    assert text("en", "checkpoint.flagged", zone=name) in flagged
    await officer.press(text("en", "checkpoint.direction.out"))
    await officer.reply()
    await officer.send(stranger)
    leaving = (await officer.reply())["text"]
    assert text("en", "checkpoint.direction.out") in leaving
    assert "🚩" not in leaving

    traveller = await sandbox.chat("citizen", language_code="ru")
    await traveller.send("/start cp_forged")
    assert (await traveller.reply())["text"] == text("ru", "checkpoint.unknown_code")
    await traveller.send(f"/start {post.qr_token}")
    intro = await traveller.reply()
    assert text("ru", "checkpoint.direction.in") in buttons(intro)
    await traveller.press(text("ru", "checkpoint.direction.in"))
    await traveller.reply()
    phone = make_phone()
    await traveller.send_contact(phone, own=False)
    assert (await traveller.reply())["text"] == text("ru", "errors.not_own_contact")
    await traveller.send_contact(phone)
    done = (await traveller.reply())["text"]
    assert post.name in done

    rows = await services.checkpoints.pool.fetch(
        "SELECT direction, iin, plate, phone, flagged FROM passings"
        " WHERE checkpoint_id = $1 ORDER BY id",
        post.id,
    )
    assert [(r["direction"], r["flagged"]) for r in rows] == [
        ("in", False),
        ("in", True),
        ("out", False),
        ("in", False),
    ]
    assert rows[0]["plate"] == f"{digits}ABC02"
    assert (rows[3]["iin"], rows[3]["plate"], rows[3]["phone"]) == (None, None, phone)


async def test_a_passing_on_a_red_drivers_permit_is_flagged_as_suspended_either_way(
    sandbox: SandboxClient, services: Services
) -> None:
    _, post = await add_zone_with_checkpoint(
        services, f"East gate {secrets.token_hex(2)}", latitude=43.25, longitude=76.99
    )
    driver, digits = make_iin(), f"{secrets.randbelow(900) + 100}"
    await add_permit(
        services,
        await add_org(services),
        iin=driver,
        plate=f"{digits} KME 02",
        register="roadblock",
    )
    await add_pcr(services, driver, "positive")

    officer = await joined_officer(
        sandbox, services, "checkpoint", checkpoint=post, menu="staff_menu.passing"
    )
    suspended = suspended_words("en", "roadblock")
    answers = []
    for direction, value in (("in", f"{digits} КМЕ 02"), ("out", driver)):
        await officer.press(text("en", f"checkpoint.direction.{direction}"))
        await officer.reply()
        await officer.send(value)
        answers.append((await officer.reply())["text"])
    for answer in answers:
        assert suspended in answer
        assert text("en", "checkpoint.flagged_suspended") in answer
        assert "✅" not in answer
        assert not any(word in answer.lower() for word in colour_words())

    rows = await services.checkpoints.pool.fetch(
        "SELECT direction, permit_result, flagged FROM passings"
        " WHERE checkpoint_id = $1 ORDER BY id",
        post.id,
    )
    assert [tuple(r) for r in rows] == [("in", "suspended", True), ("out", "suspended", True)]
