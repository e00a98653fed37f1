"""Home quarantine end to end through the sandbox: a doctor joins and enrols a patient, the
patient joins and shares live location, tracks are walked with Telegram's own edits, the
doctor's alert buttons are pressed; silence uses the sweep with a controllable clock."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bots.sandbox.client import SandboxChat, SandboxClient, buttons
from citybots.platform import Platform
from citybots.wiring import Services
from presentation.i18n import text
from services.quarantine import QuarantineService
from tests.factories import make_phone

HOME = (43.2389, 76.8897)
EIGHT_HOURS = 8 * 3600


def point(north_m: float, east_m: float = 0.0) -> tuple[float, float]:
    lat, lon = HOME
    return lat + north_m / 111_132.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat)))


async def doctor_chat(
    sandbox: SandboxClient, q: QuarantineService, *, district: str = "Almaly"
) -> SandboxChat:
    chat = await sandbox.chat("doctor", first_name="Dr Aliya")
    token = await q.create_doctor_invite(district, created_by="test")
    await chat.send(f"/start {token}")
    joined = await chat.reply()
    assert joined["text"].startswith(text("en", "doctor.joined", district=district, duty="")[:20])
    return chat


async def enrol(doctor: SandboxChat, *, home: tuple[float, float] | None) -> tuple[str, str]:
    """Through the doctor bot; returns the case code and the patient's invite token."""
    await doctor.send(text("en", "doctor_menu.enrol"))
    assert (await doctor.reply())["text"] == text("en", "doctor.ask_end")
    await doctor.send("yesterday")
    assert (await doctor.reply())["text"] == text("en", "doctor.end_invalid")
    await doctor.send("14")
    assert (await doctor.reply())["text"] == text("en", "doctor.ask_home")
    if home is None:
        await doctor.press(text("en", "doctor.skip"))
        asked = (await doctor.replies(2))[-1]  # the question loses its button, then the next
    else:
        await doctor.send("500, 500")
        assert (await doctor.reply())["text"] == text("en", "errors.location.range")
        await doctor.send(f"{home[0]}, {home[1]}")
        asked = await doctor.reply()
    assert asked["text"] == text("en", "doctor.ask_iin")
    await doctor.press(text("en", "doctor.skip"))
    changed = await doctor.replies(3)  # the skipped question loses its button, then two new
    created = next(m for m in changed if "start=" in m.get("text", ""))
    qr = next(m for m in changed if "photo" in m)
    assert qr["photo"][0]["width"] > 100
    code = created["text"].split()[1]
    token = created["text"].rsplit("start=", 1)[1].strip()
    return code, token


async def join_patient(sandbox: SandboxClient, token: str, *, language: str = "en") -> SandboxChat:
    chat = await sandbox.chat("quarantine", language_code=language)
    await chat.send(f"/start {token}")
    consent = await chat.reply()
    assert text(language, "quarantine.agree") in buttons(consent)
    await chat.press(text(language, "quarantine.agree"))
    consented, ask = await chat.replies(2)  # the buttons go, then the next question
    assert buttons(consented) == []
    assert ask["text"] == text(language, "quarantine.ask_phone")
    await chat.send_contact(make_phone(), own=False)
    assert (await chat.reply())["text"] == text(language, "quarantine.not_own_contact")
    await chat.send_contact(make_phone())
    instructions = await chat.reply()
    assert instructions["text"].startswith(text(language, "quarantine.share_live", end="X")[:30])
    return chat


async def enrolled(
    sandbox: SandboxClient,
    q: QuarantineService,
    *,
    home: tuple[float, float] | None = HOME,
    language: str = "en",
) -> tuple[SandboxChat, str, SandboxChat]:
    """A doctor who joined and enrolled a patient (see :func:`enrol`), and the patient who
    joined with the invite: the doctor's chat, the case code, the patient's chat."""
    doctor = await doctor_chat(sandbox, q)
    code, token = await enrol(doctor, home=home)
    return doctor, code, await join_patient(sandbox, token, language=language)


async def doctor_messages(doctor: SandboxChat, count: int = 1) -> list[dict[str, Any]]:
    return await doctor.replies(count, wait=15)


async def settle(platform: Platform) -> None:
    """Let the batches in flight reach PostgreSQL."""
    await asyncio.sleep(0.3)


async def test_a_walk_out_raises_one_alert_and_coming_back_closes_it(
    sandbox: SandboxClient, platform: Platform
) -> None:
    q = platform.services.quarantine
    doctor, code, patient = await enrolled(sandbox, q)

    await patient.send_location(*point(3))  # a one-off location is not enough
    assert (await patient.reply())["text"] == text("en", "quarantine.static_location")
    t0 = int(time.time())
    live = await patient.send_location(
        *point(3), live_period=EIGHT_HOURS, horizontal_accuracy=12, at=t0
    )
    assert (await patient.reply())["text"].startswith(
        text("en", "quarantine.live_received", until="")[:20]
    )
    for second, (north, east, accuracy) in enumerate(
        [(8, -12, 20), (-15, 6, 25), (20, 10, 35), (-5, -22, 15), (12, 12, 30), (0, 24, 28)],
        start=1,
    ):
        await patient.move_location(
            live, *point(north, east), horizontal_accuracy=accuracy, at=t0 + second * 30
        )
    await settle(platform)
    assert await doctor.updates(count=0, wait=1.5) == []  # jitter at home: no alert

    for step, north in enumerate((35, 50, 60, 62), start=1):
        await patient.move_location(
            live, *point(north), horizontal_accuracy=8, at=t0 + 300 + step * 30
        )
    alert = (await doctor_messages(doctor))[-1]
    assert alert["text"].startswith(f"🚨 Case {code}: LEFT HOME")
    assert buttons(alert) == [
        text("en", "doctor.alert.button_ack"),
        text("en", "doctor.alert.button_called"),
        text("en", "doctor.alert.button_resolve"),
    ]
    warning = (await patient.replies(1, wait=15))[-1]
    assert warning["text"].startswith("⚠️")
    # More fixes outside: still one alert for the episode.
    for step in range(1, 4):
        await patient.move_location(
            live, *point(70), horizontal_accuracy=8, at=t0 + 450 + step * 30
        )
    await settle(platform)
    assert await doctor.updates(count=0, wait=1.5) == []

    await doctor.press(text("en", "doctor.alert.button_ack"))
    acknowledged = (await doctor.updates(count=1, wait=10))[-1]
    assert text("en", "doctor.alert.acknowledged") in acknowledged["text"]
    assert text("en", "doctor.alert.button_ack") not in buttons(acknowledged)

    await patient.move_location(live, *point(4), horizontal_accuracy=8, at=t0 + 600)
    closed = (await doctor_messages(doctor))[-1]
    assert closed["text"].startswith(f"✅ Case {code}: back home")
    back = (await patient.replies(1, wait=15))[-1]
    assert back["text"] == text("en", "quarantine.patient.back_home")

    await doctor.send("/cases")
    listing = (await doctor.replies(1))[-1]["text"]
    assert f"🏠 {code}" in listing


async def test_home_proposed_from_the_first_fix_then_stop_sharing_is_alerted_after_15_minutes(
    sandbox: SandboxClient, platform: Platform
) -> None:
    q = platform.services.quarantine
    doctor, code, patient = await enrolled(sandbox, q, home=None, language="ru")
    t0 = int(time.time())
    live = await patient.send_location(
        *point(0), live_period=EIGHT_HOURS, horizontal_accuracy=10, at=t0
    )
    # "Live location received" from the handler, the proposal from the outbox: any order.
    arrived = await patient.replies(2, wait=15)
    proposal = next(m for m in arrived if "inline_keyboard" in (m.get("reply_markup") or {}))
    assert proposal["text"].startswith(text("ru", "quarantine.confirm_home", radius="30"))
    await patient.press(text("ru", "quarantine.home_yes"))
    assert (await patient.replies(2))[-1]["text"] == (
        "Домашняя точка сохранена. Пожалуйста, оставайтесь в пределах 30 м от неё "
        "до окончания изоляции."
    )

    await patient.move_location(live, *point(2), horizontal_accuracy=10, at=t0 + 30)
    await patient.stop_location(live, at=t0 + 60)
    stopped = (await patient.replies(1, wait=15))[-1]
    assert stopped["text"] == text("ru", "quarantine.patient.sharing_stopped", silence="15 минут")
    await settle(platform)
    # The controllable clock: the sweep is asked about 15 minutes and a bit later.
    await q.sweep(datetime.fromtimestamp(t0 + 30, UTC) + timedelta(minutes=15, seconds=5))
    alert = (await doctor_messages(doctor))[-1]
    assert alert["text"].startswith(f"✋ Case {code}")
    await doctor.press(text("en", "doctor.alert.button_resolve"))
    resolved = (await doctor.updates(count=1, wait=10))[-1]
    assert text("en", "doctor.alert.resolved") in resolved["text"]
    assert buttons(resolved) == []


async def test_forged_and_reused_invites_forwarded_and_foreign_fixes_change_nothing(
    sandbox: SandboxClient, platform: Platform, services: Services
) -> None:
    q = services.quarantine
    stranger = await sandbox.chat("quarantine")
    await stranger.send("/start q_forged-token-0000")
    assert (await stranger.reply())["text"] == text("en", "quarantine.invite_invalid")
    doctor = await doctor_chat(sandbox, q)
    code, token = await enrol(doctor, home=HOME)
    patient = await join_patient(sandbox, token)
    await stranger.send(f"/start {token}")  # someone else with the patient's link
    assert (await stranger.reply())["text"] == text("en", "quarantine.invite_invalid")
    # A stranger's live location moves nobody's case.
    t0 = int(time.time())
    foreign = await stranger.send_location(*point(500), live_period=EIGHT_HOURS, at=t0)
    assert (await stranger.reply())["text"] == text("en", "quarantine.not_enrolled")
    await stranger.move_location(foreign, *point(600), horizontal_accuracy=5, at=t0 + 30)
    await patient.send_location(*point(80), live_period=EIGHT_HOURS, forwarded=True, at=t0)
    assert (await patient.reply())["text"] == text("en", "quarantine.forwarded")

    live = await patient.send_location(*point(0), live_period=EIGHT_HOURS, at=t0)
    await patient.reply()
    # Twice the same fix (a duplicate delivery), then an old one arriving late.
    await patient.move_location(live, *point(80), horizontal_accuracy=5, at=t0 + 60)
    await patient.move_location(live, *point(80), horizontal_accuracy=5, at=t0 + 60)
    await patient.move_location(live, *point(80), horizontal_accuracy=5, at=t0 + 30)
    await settle(platform)
    assert await doctor.updates(count=0, wait=1.5) == []  # one fix outside: not confirmed
    pool = services.outbox.pool
    fixes = await pool.fetchval(
        "SELECT count(*) FROM location_fixes f JOIN quarantine_cases c ON c.id = f.case_id "
        "WHERE c.code = $1",
        code,
    )
    assert fixes == 3  # the first, the move and the late one; the duplicate added nothing
    await patient.move_location(live, *point(90), horizontal_accuracy=5, at=t0 + 90)
    alert = (await doctor_messages(doctor))[-1]
    assert alert["text"].startswith(f"🚨 Case {code}: LEFT HOME")


async def test_a_patient_who_blocks_the_bot_is_reported(
    sandbox: SandboxClient, platform: Platform
) -> None:
    q = platform.services.quarantine
    doctor, code, patient = await enrolled(sandbox, q)
    await patient.block()
    alert = (await doctor_messages(doctor))[-1]
    assert alert["text"].startswith(f"🚫 Case {code}")


async def stored_fixes(services: Services, code: str, count: int) -> None:
    """Wait until ``count`` fixes of the case are stored (and judged: the same transaction)."""
    for _ in range(300):
        stored = await services.outbox.pool.fetchval(
            "SELECT count(*) FROM location_fixes f JOIN quarantine_cases c ON c.id = f.case_id "
            "WHERE c.code = $1",
            code,
        )
        if stored >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} fixes never arrived for case {code}")


async def test_a_fix_whose_disc_only_touches_home_does_not_end_a_left_home_alert(
    sandbox: SandboxClient, services: Services
) -> None:
    doctor, code, patient = await enrolled(sandbox, services.quarantine)
    t0 = int(time.time())
    live = await patient.send_location(
        *point(2), live_period=EIGHT_HOURS, horizontal_accuracy=10, at=t0
    )
    await patient.reply()
    for step, north in enumerate((70, 72), start=1):
        await patient.move_location(live, *point(north), horizontal_accuracy=8, at=t0 + step * 30)
    alert = (await doctor_messages(doctor))[-1]
    assert alert["text"].startswith(f"🚨 Case {code}: LEFT HOME")
    assert (await patient.replies(1, wait=15))[-1]["text"].startswith("⚠️")

    # 75 m away at ±46 m: the disc reaches home, yet the patient may well be 75 m away.
    await patient.move_location(live, *point(75), horizontal_accuracy=46, at=t0 + 90)
    await stored_fixes(services, code, 4)
    await doctor.send("/cases")
    listing = (await doctor.replies(1))[-1]["text"]
    outside = text("en", "doctor.state.outside")
    assert f"{code} — {outside} — {text('en', 'doctor.kind.left_home')}" in listing

    # 5 m away at ±10 m: surely inside.
    await patient.move_location(live, *point(5), horizontal_accuracy=10, at=t0 + 120)
    over = (await doctor_messages(doctor))[-1]
    assert over["text"].startswith(f"✅ Case {code}: back home")
    back = await patient.replies(1, wait=15)
    assert [m["text"] for m in back] == [text("en", "quarantine.patient.back_home")]
