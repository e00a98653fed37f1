"""Ashyq end to end through the sandbox: sign-up, colours, QR check-in and check-out,
staff-assisted check-in, auto-checkout, exposure notices, forged codes, duplicates."""

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import ClientSession

from bots.sandbox.client import SandboxChat, SandboxClient, buttons
from citybots.platform import Platform
from citybots.wiring import Services
from presentation.formatting import local_clock
from presentation.i18n import text
from services.citizens import mask_iin
from services.venues import Venue
from tests.factories import (
    Door,
    add_contact,
    add_pcr,
    iin_typed,
    inside_together,
    last_stay,
    make_iin,
    make_phone,
    make_venue,
    register_phone,
    registered_phone,
    scan,
    signed_up,
    staffed_venue,
    venue_card,
    venue_codes,
    verify_venue,
)


async def test_sign_up_refuses_mistyped_and_unproven_iins_then_links(
    sandbox: SandboxClient, services: Services
) -> None:
    iin, phone = await registered_phone(services)
    chat = await sandbox.chat("citizen", language_code="ru")
    await chat.send(text("ru", "citizen_menu.status"))
    ask = await chat.reply()
    assert text("ru", "signup.ask_phone") in ask["text"]
    assert ask["reply_markup"]["keyboard"][0][0]["request_contact"] is True
    await chat.send("my number is +77010000000")
    assert (await chat.reply())["text"] == text("ru", "signup.phone_expected")
    await chat.send_contact(phone, own=False)
    assert (await chat.reply())["text"] == text("ru", "signup.not_own_contact")
    await chat.send_contact(phone)
    ask_iin = await chat.reply()
    assert ask_iin["text"] == text("ru", "signup.ask_iin")
    assert ask_iin["reply_markup"] == {"remove_keyboard": True}  # no phone button any more
    for wrong, key in (
        ("12345", "errors.iin.length"),
        ("9001013OOO16", "errors.iin.not_digits"),
        ("900101300016", "errors.iin.check_digit"),
    ):
        await chat.send(wrong)
        assert (await chat.reply())["text"] == text("ru", key)
    await chat.send(make_iin())  # valid, but not this phone's
    assert (await chat.reply())["text"] == text("ru", "signup.no_match")
    await chat.send(iin)
    linked, card = await chat.replies(2)
    assert linked["text"] == text("ru", "signup.linked")
    assert card["photo"][0]["width"] == 900
    assert card["caption"].startswith(text("ru", "colour.blue"))
    assert await services.citizens.iin_of(chat.user_id) == iin


async def test_after_five_failed_links_even_the_right_iin_waits_until_the_hour_is_over(
    sandbox: SandboxClient, platform: Platform, services: Services
) -> None:
    iin, phone = await registered_phone(services)
    chat = await sandbox.chat("citizen", language_code="ru")

    async def attempt(typed: str) -> str:
        await chat.send(text("ru", "citizen_menu.status"))
        await chat.reply()
        await chat.send_contact(phone)
        await chat.reply()
        await chat.send(typed)
        return str((await chat.reply())["text"])

    await chat.send(text("ru", "citizen_menu.status"))
    await chat.reply()
    await chat.send_contact(phone)
    await chat.reply()
    for _ in range(5):
        await chat.send(make_iin())
        assert (await chat.reply())["text"] == text("ru", "signup.no_match")
    # The hour of these failures is made to end at a known moment, mid-minute.
    ends = (datetime.now(UTC) + timedelta(minutes=40)).replace(second=30, microsecond=0)
    await platform.redis.pexpireat(f"rate:link-fail:{chat.user_id}", ends)
    city_tz = ZoneInfo(platform.settings.city_timezone)
    next_minute = ends.replace(second=0) + timedelta(minutes=1)
    blocked = text("ru", "signup.rate_limited", time=local_clock(next_minute, city_tz))

    await chat.send(iin)
    assert (await chat.reply())["text"] == blocked
    assert await services.citizens.iin_of(chat.user_id) is None
    # The same answer for an IIN that is not this phone's: nothing said about the IIN.
    assert await attempt(make_iin()) == blocked
    assert await attempt(iin) == blocked
    assert await services.citizens.iin_of(chat.user_id) is None

    await platform.redis.delete(f"rate:link-fail:{chat.user_id}")  # the hour is over
    await chat.send(text("ru", "citizen_menu.status"))
    await chat.reply()
    await chat.send_contact(phone)
    await chat.reply()
    await chat.send(iin)
    linked, _card = await chat.replies(2)
    assert linked["text"] == text("ru", "signup.linked")
    assert await services.citizens.iin_of(chat.user_id) == iin


async def test_every_colour_is_shown_and_green_expires_exactly_at_72_hours(
    sandbox: SandboxClient, services: Services
) -> None:
    chat, iin = await signed_up(sandbox, services)
    result_at = datetime.now(UTC) - timedelta(hours=71, minutes=59, seconds=54)
    await add_pcr(services, iin, "negative", result_at=result_at)
    await chat.send("/status")
    green = await chat.reply()
    assert green["caption"].startswith(text("en", "colour.green"))
    assert "Green is valid for 72 hours from the test result." in green["caption"]
    await asyncio.sleep(
        max(0.0, (result_at + timedelta(hours=72) - datetime.now(UTC)).total_seconds()) + 0.5
    )
    await chat.send("/status")
    assert (await chat.reply())["caption"].startswith(text("en", "colour.blue"))
    await add_contact(services, iin)
    await chat.send("/status")
    assert (await chat.reply())["caption"].startswith(text("en", "colour.yellow"))
    await add_pcr(services, iin, "positive")
    await chat.send("/status")
    red = await chat.reply()
    assert red["caption"].startswith(text("en", "colour.red"))
    assert "Test lab" in red["caption"]
    png = await sandbox.file(red["photo"][0]["file_id"])
    assert png.startswith(b"\x89PNG")


async def test_scan_admits_green_refuses_red_and_exit_checks_out(
    sandbox: SandboxClient, services: Services, door: Door
) -> None:
    chat, _ = await signed_up(sandbox, services)
    admitted = await scan(chat, door.entry)
    assert admitted["text"] == text(
        "en", "checkin.admitted", venue=door.venue.name, colour=text("en", "colour.blue")
    )
    assert (await scan(chat, door.entry))["text"] == text(
        "en", "checkin.already_inside", venue=door.venue.name
    )
    assert await services.visits.occupancy(door.venue.id) == 1
    assert (await scan(chat, door.exit))["text"] == text(
        "en", "checkin.checked_out", venue=door.venue.name
    )
    await chat.send(text("en", "citizen_menu.visits"))
    visits = await chat.reply()
    assert door.venue.name in visits["text"]

    red_chat, red_iin = await signed_up(sandbox, services)
    await add_pcr(services, red_iin, "positive")
    refused = await scan(red_chat, door.entry)
    assert refused["text"].startswith("⛔")
    assert text("en", "colour.red") in refused["text"]
    assert await services.visits.occupancy(door.venue.id) == 0


async def test_a_scan_before_sign_up_resumes_after_linking(
    sandbox: SandboxClient, services: Services, door: Door
) -> None:
    iin, phone = await registered_phone(services)
    chat = await sandbox.chat("citizen", language_code="kk")
    await chat.send(f"/start {door.entry}")
    assert text("kk", "checkin.link_first") in (await chat.reply())["text"]
    await chat.send_contact(phone)
    await chat.reply()
    await chat.send(iin)
    linked, welcome = await chat.replies(2)
    assert linked["text"] == text("kk", "signup.linked")
    assert welcome["text"].startswith("✅")
    assert door.venue.name in welcome["text"]


async def test_forged_and_revoked_codes_get_clear_messages(
    sandbox: SandboxClient, services: Services
) -> None:
    venue = await make_venue(services)
    old = await venue_codes(services, venue)
    await services.venues.rotate_codes(venue.id)
    chat, _ = await signed_up(sandbox, services)
    await chat.send(f"/start in_{secrets.token_urlsafe(16)}")
    assert (await chat.reply())["text"] == text("en", "checkin.unknown_code")
    assert (await scan(chat, old["entry"]))["text"] == text(
        "en", "checkin.revoked_code", venue=venue.name
    )
    assert await services.visits.occupancy(venue.id) == 0


async def test_a_duplicate_delivery_and_two_scans_at_once_make_one_visit(
    sandbox: SandboxClient, services: Services, door: Door
) -> None:
    chat, iin = await signed_up(sandbox, services)
    await asyncio.gather(*(chat.send(f"/start {door.entry}") for _ in range(3)))
    await chat.replies(3)
    count = await services.visits.pool.fetchval(
        "SELECT count(*) FROM visits WHERE iin = $1 AND admitted", iin
    )
    assert count == 1


async def test_staff_register_a_venue_get_posters_and_check_in_by_iin(
    sandbox: SandboxClient, services: Services
) -> None:
    owner = await sandbox.chat("staff", language_code="en")
    await owner.send(text("en", "staff_menu.register"))
    await owner.reply()
    await owner.send("123")
    assert (await owner.reply())["text"] == text("en", "errors.bin.length")
    await owner.send("971240001315")
    await owner.reply()
    await owner.send("Cafe Test")
    await owner.reply()
    await owner.press(text("en", "venue.category.food"))
    await owner.reply()
    await owner.send("Abay Ave 10")
    await owner.reply()
    await owner.send("not a location")
    assert (await owner.reply())["text"] == text("en", "venue.location_expected")
    await owner.send_location(43.2389, 76.8897)
    saved, asked = await owner.replies(2)
    assert saved["reply_markup"] == {"remove_keyboard": True}  # the location button goes
    assert asked["text"] == text("en", "venue.ask_capacity")
    await owner.send("50")
    await owner.reply()
    await owner.press(text("en", "venue.auto_checkout_default", duration="4 h"))
    await owner.reply()
    await owner.send("Main, Parking")
    replies = await owner.replies(1 + 2 * 2 * 3, wait=20)
    assert replies[0]["text"] == text("en", "venue.registered", venue="Cafe Test")
    photos = [r for r in replies if "photo" in r]
    documents = [r["document"]["file_name"] for r in replies if "document" in r]
    assert len(photos) == 4
    assert sum(name.endswith(".pdf") for name in documents) == 4
    assert sum(name.endswith(".svg") for name in documents) == 4
    link = photos[0]["caption"].splitlines()[-1]
    assert link.startswith("https://t.me/citybots_citizen_bot?start=in_")
    poster = await sandbox.file(next(r for r in replies if "document" in r)["document"]["file_id"])
    assert poster.startswith(b"%PDF")

    venue_id = await services.venues.pool.fetchval(
        "SELECT v.id FROM venues v JOIN venue_staff s ON s.venue_id = v.id "
        "WHERE s.tg_user_id = $1",
        owner.user_id,
    )
    await verify_venue(services, venue_id)
    await owner.send(text("en", "staff_menu.venues"))
    await owner.reply()
    await owner.press("Cafe Test")
    card = await owner.reply()
    assert "Cafe Test" in card["text"]
    await owner.press(text("en", "venue.invite"))
    invite = (await owner.reply())["text"].splitlines()[-1]
    payload = invite.split("start=")[1]
    worker = await sandbox.chat("staff", language_code="ru")
    await worker.send(f"/start {payload}")
    assert (await worker.reply())["text"] == text("ru", "venue.joined", venue="Cafe Test")

    red, green = make_iin(), make_iin()
    await add_pcr(services, red, "positive")
    await add_pcr(services, green, "negative")
    await worker.send(text("ru", "staff_menu.checkin"))
    await worker.reply()
    await worker.send(green)
    admit = (await worker.reply())["text"]
    assert admit == "🟢 " + text("ru", "staff_checkin.admit", colour=text("ru", "colour.green"))
    await worker.send(red)
    refuse = (await worker.reply())["text"]
    assert refuse == "🔴 " + text("ru", "staff_checkin.refuse", colour=text("ru", "colour.red"))
    assert await services.visits.occupancy(venue_id) == 1
    audited = await services.venues.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE actor = $1 AND action = 'status.lookup'",
        f"staff:{worker.user_id}",
    )
    assert audited == 2

    await owner.press(text("en", "venue.stats"))
    chart = await owner.reply()
    assert chart["photo"][0]["width"] == 1000
    stats = chart["caption"]
    assert stats.startswith(
        text(
            "en",
            "venue.stats_title",
            venue="Cafe Test",
            checkins="1 check-in",
            refused=1,
            occupancy=1,
        )
    )
    await owner.press(text("en", "venue.close_all"))
    assert (await owner.reply())["text"] == "1 visitor checked out of Cafe Test."

    await owner.press(text("en", "venue.capacity"))
    await owner.reply()
    await owner.send("1")
    await owner.reply()
    await owner.press(text("en", "venue.policy_refuse"))
    await owner.reply()
    strict = await services.venues.venue(venue_id)
    assert (strict.capacity, strict.capacity_policy) == (1, "refuse")
    await worker.send(green)
    assert (await worker.reply())["text"].startswith("🟢")
    await worker.send(make_iin())
    assert (await worker.reply())["text"] == "🔵 " + text(
        "ru", "staff_checkin.full", colour=text("ru", "colour.blue")
    )


async def test_a_venue_sets_its_own_auto_checkout_time_at_registration_and_later(
    sandbox: SandboxClient, services: Services
) -> None:
    owner = await sandbox.chat("staff", language_code="ru")
    name = f"Bar {secrets.token_hex(3)}"
    await owner.send(text("ru", "staff_menu.register"))
    await owner.reply()
    for answer in ("971240001315", name):
        await owner.send(answer)
        await owner.reply()
    await owner.press(text("ru", "venue.category.food"))
    await owner.reply()
    await owner.send("Abay Ave 12")
    await owner.reply()
    await owner.send_location(43.2389, 76.8897)
    await owner.replies(2)
    await owner.press(text("ru", "dispute.skip"))  # no capacity
    asked = await owner.reply()
    assert asked["text"] == text("ru", "venue.ask_auto_checkout")
    default = text("ru", "venue.auto_checkout_default", duration="4 ч")
    assert buttons(asked) == [default]
    for wrong in ("0:10", "25", "полтора часа"):
        await owner.send(wrong)
        assert (await owner.reply())["text"] == text("ru", "errors_venue.auto_checkout")
    await owner.send("1,5")
    assert (await owner.reply())["text"] == text("ru", "venue.ask_entrances")
    await owner.press(text("ru", "dispute.skip"))  # one entrance
    registered = await owner.replies(1 + 2 * 3, wait=20)
    assert registered[0]["text"] == text("ru", "venue.registered", venue=name)
    venue_id = await services.venues.pool.fetchval(
        "SELECT venue_id FROM venue_staff WHERE tg_user_id = $1", owner.user_id
    )
    assert (await services.venues.venue(venue_id)).auto_checkout_minutes == 90

    await owner.send(text("ru", "staff_menu.venues"))
    await owner.reply()
    await owner.press(name)
    card = await owner.reply()
    assert card["text"] == text(
        "ru", "venue.card", venue=name, occupancy=0, capacity_text="", duration="1 ч 30 мин"
    ) + "\n\n" + text("ru", "venue.unverified_note")
    await owner.press(text("ru", "venue.auto_checkout"))
    assert (await owner.reply())["text"] == text(
        "ru", "venue.ask_new_auto_checkout", venue=name, duration="1 ч 30 мин"
    )
    await owner.send("24:30")
    assert (await owner.reply())["text"] == text("ru", "errors_venue.auto_checkout")
    await owner.send("0:45")
    assert (await owner.reply())["text"] == text(
        "ru", "venue.auto_checkout_set", venue=name, duration="45 мин"
    )
    assert (await services.venues.venue(venue_id)).auto_checkout_minutes == 45
    await owner.press(text("ru", "venue.auto_checkout"))
    await owner.reply()
    await owner.press(default)
    assert (await owner.reply())["text"] == text(
        "ru", "venue.auto_checkout_set", venue=name, duration="4 ч"
    )
    assert (await services.venues.venue(venue_id)).auto_checkout_minutes == 240

    worker = await sandbox.chat("staff", language_code="ru")
    await worker.send(f"/start {await services.venues.create_invite(venue_id, owner.user_id)}")
    await worker.reply()
    await worker.send(text("ru", "staff_menu.venues"))
    await worker.reply()
    await worker.press(name)
    staff_card = await worker.reply()
    assert text("ru", "venue.checkout_one") in buttons(staff_card)
    assert text("ru", "venue.auto_checkout") not in buttons(staff_card)  # the owner's choice


async def test_staff_lookups_are_rate_limited(
    sandbox: SandboxClient, platform: Platform, services: Services
) -> None:
    worker = await sandbox.chat("staff")
    await make_venue(services, owner=worker.user_id, verified=True)
    await worker.send(text("en", "staff_menu.checkin"))
    await worker.reply()
    limit = platform.settings.staff_lookups_per_hour
    await platform.redis.set(f"rate:staff-lookup:staff:{worker.user_id}", limit, ex=3600)
    await worker.send(make_iin())
    assert (await worker.reply())["text"] == text("en", "staff_checkin.rate_limited")


async def _checking_one_out(staff: SandboxChat, lang: str, venue: Venue) -> str:
    """The staff member presses "check one visitor out" on the venue's card; the question."""
    await venue_card(staff, venue, lang)
    await staff.press(text(lang, "venue.checkout_one"))
    return str((await staff.reply())["text"])


async def test_staff_check_one_visitor_out_by_iin_and_the_visitor_is_told(
    sandbox: SandboxClient, platform: Platform, services: Services
) -> None:
    owner, venue, worker = await staffed_venue(sandbox, services, worker_lang="ru")
    other_owner = await sandbox.chat("staff", language_code="en")
    elsewhere = await make_venue(services, owner=other_owner.user_id, verified=True)
    visitor_chat, visitor = await signed_up(sandbox, services)
    await visitor_chat.send(f"/start {(await venue_codes(services, venue))['entry']}")
    await visitor_chat.reply()
    without_phone, at_the_other_venue = make_iin(), make_iin()
    await services.visits.check_in(without_phone, venue, entrance_id=None, via="qr")
    await services.visits.check_in(at_the_other_venue, elsewhere, entrance_id=None, via="qr")

    asked = await _checking_one_out(worker, "ru", venue)
    assert asked == text("ru", "staff_checkout.ask_iin", venue=venue.name)
    await worker.send("900101300016")
    assert (await worker.reply())["text"] == text("ru", "errors.iin.check_digit")
    await worker.send(at_the_other_venue)
    not_here = text("ru", "staff_checkout.not_inside", venue=venue.name)
    assert (await worker.reply())["text"] == not_here
    assert await services.visits.occupancy(elsewhere.id) == 1
    await worker.send(visitor)
    done = text("ru", "staff_checkout.done", venue=venue.name)
    assert (await worker.reply())["text"] == done
    assert await services.visits.occupancy(venue.id) == 1
    stay = await last_stay(services, visitor, venue.id)
    assert stay["checked_out_at"] is not None
    assert stay["checkout_kind"] == "staff"
    told = await visitor_chat.reply(wait=15)
    assert told["text"] == text("en", "notices.staff_checkout", venue=venue.name)
    await visitor_chat.send(text("en", "citizen_menu.visits"))
    assert text("en", "visits.staff") in (await visitor_chat.reply())["text"]
    await worker.send(visitor)
    assert (await worker.reply())["text"] == not_here  # already out
    audited = await services.venues.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE actor = $1 AND action = 'visit.staff_checkout'",
        f"staff:{worker.user_id}",
    )
    assert audited == 3

    # The other venue's owner checks out of their own venue only.
    await _checking_one_out(other_owner, "en", elsewhere)
    await other_owner.send(without_phone)
    assert (await other_owner.reply())["text"] == text(
        "en", "staff_checkout.not_inside", venue=elsewhere.name
    )
    assert await services.visits.occupancy(venue.id) == 1

    # The same hourly quota as check-ins by IIN.
    limit = platform.settings.staff_lookups_per_hour
    await platform.redis.set(f"rate:staff-lookup:staff:{worker.user_id}", limit, ex=3600)
    await worker.send(without_phone)
    assert (await worker.reply())["text"] == text("ru", "staff_checkin.rate_limited")
    assert await services.visits.occupancy(venue.id) == 1
    await _checking_one_out(owner, "en", venue)
    await owner.send(without_phone)
    done_en = text("en", "staff_checkout.done", venue=venue.name)
    assert (await owner.reply())["text"] == done_en
    assert await services.visits.occupancy(venue.id) == 0


async def test_auto_checkout_closes_a_forgotten_stay(
    sandbox: SandboxClient, services: Services, door: Door
) -> None:
    chat, iin = await signed_up(sandbox, services)
    await scan(chat, door.entry)
    await services.visits.pool.execute(
        "UPDATE visits SET checked_in_at = now() - interval '5 hours' WHERE iin = $1", iin
    )
    assert await services.visits.auto_checkout() >= 1
    await chat.send(text("en", "citizen_menu.visits"))
    assert text("en", "visits.auto") in (await chat.reply())["text"]


async def test_an_exposure_notice_reaches_the_other_visitor_once(
    sandbox: SandboxClient, services: Services, door: Door
) -> None:
    sick_chat, sick, other_chat = await inside_together(sandbox, services, door, other_lang="ru")
    await add_pcr(services, sick, "positive")
    notice = await other_chat.reply(wait=15)
    assert notice["text"].startswith("⚠️")
    assert door.venue.name in notice["text"]
    assert sick not in notice["text"]
    await asyncio.sleep(1.0)
    assert await other_chat.updates(count=0, wait=0) == []
    assert await sick_chat.updates(count=0, wait=0) == []


async def test_a_dispute_reaches_the_officers_and_the_answer_comes_back(
    sandbox: SandboxClient, services: Services
) -> None:
    chat, _ = await signed_up(sandbox, services)
    await chat.send(text("en", "citizen_menu.dispute"))
    await chat.reply()
    await chat.send("My negative test from yesterday is missing")
    await chat.reply()
    await chat.press(text("en", "dispute.skip"))
    opened = (await chat.reply())["text"]
    dispute_id = int(opened.split("#")[1].split()[0])
    listed = [d for d in await services.disputes.list() if d.id == dispute_id]
    assert listed[0].claim == "My negative test from yesterday is missing"
    await services.disputes.resolve(
        dispute_id, officer="Officer A", upheld=False, note="no test found at the named laboratory"
    )
    answer = await chat.reply(wait=15)
    assert answer["text"] == text(
        "en",
        "notices.dispute_rejected",
        id=dispute_id,
        note="no test found at the named laboratory",
    )


async def test_the_healthz_still_green(platform: Platform) -> None:
    async with ClientSession() as http, http.get(f"{platform.base_url}/healthz") as r:
        assert r.status == 200


async def test_a_notice_that_cannot_be_sent_now_is_sent_later_exactly_once(
    sandbox: SandboxClient, services: Services, door: Door
) -> None:
    _, sick, other_chat = await inside_together(sandbox, services, door)
    await sandbox.inject_faults(count=2, status=500, methods=["sendMessage"])
    await add_pcr(services, sick, "positive")
    notice = await other_chat.reply(wait=20)
    assert door.venue.name in notice["text"]
    await asyncio.sleep(1.5)
    assert await other_chat.updates(count=0, wait=0) == []
    row = await services.outbox.pool.fetchrow(
        "SELECT attempts, sent_at FROM outbox WHERE chat_id = $1 AND kind = 'exposure'",
        other_chat.user_id,
    )
    assert row["sent_at"] is not None
    assert row["attempts"] >= 2


async def test_an_iin_without_a_birth_date_is_confirmed_not_refused(
    sandbox: SandboxClient, services: Services
) -> None:
    from services.validation import _check_digit

    body = next(
        b for b in (f"9913323{n:04d}" for n in range(10_000)) if _check_digit(b) is not None
    )
    iin, phone = body + str(_check_digit(body)), make_phone()
    await register_phone(services, iin, phone)
    chat = await iin_typed(sandbox, phone, iin)
    assert (await chat.reply())["text"] == text("en", "signup.confirm_date", iin=iin)
    await chat.press(text("en", "signup.confirm_no"))
    assert (await chat.reply())["text"] == text("en", "signup.ask_iin")
    await chat.send(iin)
    await chat.reply()
    await chat.press(text("en", "signup.confirm_yes"))
    linked, _card = await chat.replies(2)
    assert linked["text"] == text("en", "signup.linked")


async def test_moving_an_iin_to_a_new_account_tells_the_old_one(
    sandbox: SandboxClient, services: Services
) -> None:
    old_chat, iin = await signed_up(sandbox, services)
    phone = await services.citizens.pool.fetchval("SELECT phone FROM citizens WHERE iin = $1", iin)
    new_chat = await iin_typed(sandbox, phone, iin)
    assert (await new_chat.reply())["text"] == text("en", "signup.taken")
    await new_chat.press(text("en", "signup.move"))
    linked, _card = await new_chat.replies(2)
    assert linked["text"] == text("en", "signup.linked")
    told = await old_chat.reply(wait=15)
    assert told["text"] == text("en", "notices.account_moved", iin=mask_iin(iin))
    assert iin not in told["text"]
    assert await services.citizens.iin_of(old_chat.user_id) is None


async def test_unlink_rotate_and_a_used_invite(sandbox: SandboxClient, services: Services) -> None:
    chat, _ = await signed_up(sandbox, services)
    await chat.send("/unlink")
    assert (await chat.reply())["text"] == text("en", "signup.unlinked")
    await chat.send("/unlink")
    assert (await chat.reply())["text"] == text("en", "signup.not_linked_unlink")

    owner = await sandbox.chat("staff", language_code="en")
    venue = await make_venue(services, owner=owner.user_id)
    old = await venue_codes(services, venue)
    await owner.send(text("en", "staff_menu.venues"))
    await owner.reply()
    await owner.press(venue.name)
    await owner.reply()
    await owner.press(text("en", "venue.rotate"))
    replies = await owner.replies(1 + 2 * 3)
    assert replies[0]["text"] == text("en", "venue.rotated", venue=venue.name)
    new = await venue_codes(services, venue)
    assert new["entry"] != old["entry"]
    assert new["entry"] in replies[1]["caption"]

    invite = await services.venues.create_invite(venue.id, owner.user_id)
    first, second = await sandbox.chat("staff"), await sandbox.chat("staff")
    await first.send(f"/start {invite}")
    assert (await first.reply())["text"] == text("en", "venue.joined", venue=venue.name)
    await second.send(f"/start {invite}")
    assert (await second.reply())["text"] == text("en", "venue.invite_invalid")
    await second.send(text("en", "staff_menu.checkin"))
    assert (await second.reply())["text"] == text("en", "staff_checkin.not_staff")


async def test_the_demo_city_can_be_tried_end_to_end(
    sandbox: SandboxClient, services: Services
) -> None:
    from services.demo import DEMO_PEOPLE, demo_token, load_demo_data

    async with services.statuses.pool.acquire() as conn:
        await load_demo_data(conn)
    await services.statuses.invalidate(p.iin for p in DEMO_PEOPLE)
    green = next(p for p in DEMO_PEOPLE if p.key == "green")
    await services.citizens.pool.execute("DELETE FROM citizens WHERE iin = $1", green.iin)
    chat = await sandbox.chat("citizen", language_code="en")
    await chat.send(f"/start {demo_token('arbat-cafe', 'entry')}")
    await chat.reply()
    await chat.send_contact(green.phone)
    await chat.reply()
    await chat.send(green.iin)
    _linked, welcome = await chat.replies(2)
    assert welcome["text"].startswith("✅")
    assert "[DEMO] Cafe Arbat" in welcome["text"]
    assert text("en", "colour.green") in welcome["text"]
