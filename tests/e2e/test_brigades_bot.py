"""A disinfection brigade through the sandbox, in the staff bot: joins by the operations
desk's link, sees today's task, starts it, walks the sector sharing live location, is
asked for a photo, sends one and is told the coverage; another member (in Kazakh)
reports a task blocked with a reason."""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from bots.sandbox.client import SandboxClient, buttons
from citybots.platform import Platform
from presentation.i18n import text
from tests.integration.test_brigades import M_LAT, M_LON, make_district

PNG = bytes.fromhex("89504e470d0a1a0a") + secrets.token_bytes(64)


async def test_a_brigade_member_works_a_task_from_start_to_done_with_track_and_photo(
    sandbox: SandboxClient, platform: Platform
) -> None:
    services = platform.services
    assert services is not None
    district, _ = await make_district(services, sectors=2)
    brigade = await services.brigades.create(f"B-{secrets.token_hex(3)}", district, by="ops")
    today = datetime.now(ZoneInfo(platform.settings.city_timezone)).date()
    first, second = await services.brigades.plan_district(
        brigade.id, today, "surface", count=2, by="ops"
    )

    member = await sandbox.chat("staff")
    await member.send(text("en", "brigade.menu"))
    assert (await member.reply())["text"] == text("en", "brigade.not_member")
    await member.send("/start brg_forged")
    assert (await member.reply())["text"] == text("en", "brigade.invite_invalid")
    await member.send(f"/start {await services.brigades.invite(brigade.id, by='ops')}")
    joined = (await member.reply())["text"]
    assert joined == text("en", "brigade.joined", brigade=brigade.name, district=district)

    await member.send(text("en", "brigade.menu"))
    listing = await member.reply()
    assert first.area_name in listing["text"]
    assert text("en", "brigade.start_button", position=1) in buttons(listing)
    await member.press(text("en", "brigade.start_button", position=1))
    started = await member.reply()
    assert started["text"].startswith(text("en", "brigade.started", position=1, area="x")[:8])

    (west, south), *_ = first.area["coordinates"][0]
    live = await member.send_location(south + 10 * M_LAT, west, live_period=8 * 3600)
    assert "📍" in (await member.reply())["text"]
    moment = int(time.time()) - 600  # one move every 5 seconds (Telegram's edit_date)
    for lane in range(10):
        lat = south + (10 + 20 * lane) * M_LAT
        for step in (0, 100, 200):
            moment += 5
            await member.move_location(live, lat, west + step * M_LON, at=moment)
    await member.press(text("en", "brigade.done_button", position=1))
    assert (await member.reply())["text"] == text("en", "brigade.photo_needed")
    await member.send_photo(PNG)
    assert (await member.reply())["text"] == text("en", "brigade.photo_saved", count=1)
    await member.press(text("en", "brigade.done_button", position=1))
    done = (await member.reply())["text"]
    assert done.startswith("✅")

    row = await platform.pool.fetchrow(
        "SELECT state, coverage, (SELECT count(*) FROM brigade_fixes f WHERE f.task_id = t.id) "
        "AS fixes FROM brigade_tasks t WHERE id = $1",
        first.id,
    )
    assert row["state"] == "done"
    assert row["fixes"] >= 20
    assert row["coverage"] > 0.8

    other = await sandbox.chat("staff", language_code="kk")
    await other.send(f"/start {await services.brigades.invite(brigade.id, by='ops')}")
    await other.reply()
    await other.send(text("kk", "brigade.menu"))
    listing = await other.reply()
    assert text("kk", "brigade.state_done") in listing["text"]
    await other.press(text("kk", "brigade.start_button", position=2))
    await other.reply()
    await other.press(text("kk", "brigade.blocked_button", position=2))
    assert (await other.reply())["text"] == text("kk", "brigade.ask_reason")
    await other.send("Қақпа жабық")
    blocked = (await other.reply())["text"]
    assert blocked == text("kk", "brigade.blocked", position=2, reason="Қақпа жабық")
    state = await platform.pool.fetchval(
        "SELECT state FROM brigade_tasks WHERE id = $1", second.id
    )
    assert state == "blocked"
