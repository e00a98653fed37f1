"""Verified venues through the sandbox: a venue registered under any BIN keeps its QR
codes, but its staff look nobody up by IIN until the owner proves to be the head of the
organisation (the head's phone on the register); then its invited staff check people in
by IIN within a per-venue daily cap, never close a stay elsewhere, and the person is
told."""

import secrets
from datetime import timedelta

import pytest

from bots.sandbox.client import SandboxChat, SandboxClient, buttons
from citybots.platform import Platform
from citybots.wiring import Services
from presentation.i18n import text
from services.ratelimit import window_of
from services.venues import LookupAccess, LookupRefused, Venue
from tests.factories import (
    add_org,
    last_stay,
    make_bin,
    make_iin,
    make_phone,
    make_venue,
    open_venue,
    scan,
    signed_up,
    staffed_venue,
    venue_card,
    venue_codes,
)


async def _register(owner: SandboxChat, services: Services, bin_: str, lang: str) -> Venue:
    """A venue registered in the staff bot: the BIN, a name, one entrance, no capacity."""
    name = f"Venue {secrets.token_hex(3)}"
    await owner.send(text(lang, "staff_menu.register"))
    await owner.reply()
    for answer in (bin_, name):
        await owner.send(answer)
        await owner.reply()
    await owner.press(text(lang, "venue.category.shop"))
    await owner.reply()
    await owner.send("Abay Ave 20")
    await owner.reply()
    await owner.send_location(43.2389, 76.8897)
    await owner.replies(2)
    await owner.press(text(lang, "dispute.skip"))  # no capacity
    await owner.reply()
    await owner.press(
        text(lang, "venue.auto_checkout_default", duration=f"4 {'h' if lang == 'en' else 'ч'}")
    )
    await owner.reply()
    await owner.press(text(lang, "dispute.skip"))  # one entrance
    registered = await owner.replies(1 + 2 * 3, wait=20)
    assert registered[0]["text"] == text(lang, "venue.registered", venue=name)
    venue_id = await services.venues.pool.fetchval(
        "SELECT venue_id FROM venue_staff WHERE tg_user_id = $1", owner.user_id
    )
    return await services.venues.venue(venue_id)


async def _lookups(services: Services, staff: SandboxChat) -> int:
    return int(
        await services.venues.pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE actor = $1"
            " AND action IN ('status.lookup', 'visit.staff_checkout')",
            f"staff:{staff.user_id}",
        )
    )


async def test_a_strangers_venue_under_a_random_bin_looks_nobody_up_and_says_how_to_verify(
    sandbox: SandboxClient, services: Services
) -> None:
    elsewhere = await make_venue(services, verified=True)
    inside_elsewhere = make_iin()
    await services.visits.check_in(inside_elsewhere, elsewhere, entrance_id=None, via="qr")
    stranger = await sandbox.chat("staff", language_code="ru")
    bin_ = make_bin()  # valid, on no register
    venue = await _register(stranger, services, bin_, "ru")
    assert not venue.verified

    # The venue's QR codes work as before.
    visitor, _ = await signed_up(sandbox, services)
    entry = (await venue_codes(services, venue))["entry"]
    assert (await scan(visitor, entry))["text"].startswith("✅")
    assert await services.visits.occupancy(venue.id) == 1

    # Check-in and check-out by IIN answer how to get verified, before asking any IIN.
    unverified = text("ru", "staff_lookup.unverified", venue=venue.name)
    await stranger.send(text("ru", "staff_menu.checkin"))
    assert (await stranger.reply())["text"] == unverified
    card = await venue_card(stranger, venue, "ru")
    assert text("ru", "venue.unverified_note") in str(card["text"])
    assert text("ru", "venue.verify") in buttons(card)
    await stranger.press(text("ru", "venue.checkout_one"))
    assert (await stranger.reply())["text"] == unverified
    # Nor would the service look anyone up for them, whatever the bot's state.
    for look_up in (
        services.visits.staff_check_in(inside_elsewhere, venue, staff_tg_user_id=stranger.user_id),
        services.visits.staff_check_out(venue.id, make_iin(), staff_tg_user_id=stranger.user_id),
    ):
        with pytest.raises(LookupRefused) as refused:
            await look_up
        assert refused.value.access is LookupAccess.UNVERIFIED
    assert await _lookups(services, stranger) == 0
    assert await services.visits.occupancy(elsewhere.id) == 1  # the stay there stays open

    # A phone that is not a head's on the register verifies nothing.
    await stranger.press(text("ru", "venue.verify"))
    asked = await stranger.reply()
    assert asked["text"] == text("ru", "venue.ask_head_phone", venue=venue.name, bin=bin_)
    assert asked["reply_markup"]["keyboard"][0][0]["request_contact"] is True
    await stranger.send_contact(make_phone())
    assert (await stranger.reply())["text"] == text("ru", "errors_venue.not_head")
    assert not (await services.venues.venue(venue.id)).verified
    await stranger.send(text("ru", "staff_menu.checkin"))
    assert (await stranger.reply())["text"] == unverified


async def test_the_head_verifies_the_venue_then_invited_staff_check_in_by_iin_and_people_are_told(
    sandbox: SandboxClient, services: Services
) -> None:
    head_phone = make_phone()
    bin_ = await add_org(services, head_phone=head_phone, name="Verified Shop LLP")
    owner = await sandbox.chat("staff", language_code="en")
    venue = await _register(owner, services, bin_, "en")
    await venue_card(owner, venue, "en")
    await owner.press(text("en", "venue.verify"))
    await owner.reply()
    await owner.send_contact(head_phone, own=False)  # the head's contact, forwarded
    assert (await owner.reply())["text"] == text("en", "errors.not_own_contact")
    await owner.send("+7 701 000 00 00")
    assert (await owner.reply())["text"] == text("en", "venue.head_phone_expected")
    await owner.send_contact(head_phone)
    assert (await owner.reply())["text"] == text("en", "venue.verified", venue=venue.name)
    stored = await services.venues.pool.fetchrow(
        "SELECT verified_how, verified_owner FROM venues WHERE id = $1", venue.id
    )
    assert (stored["verified_how"], stored["verified_owner"]) == ("head", owner.user_id)
    card = await venue_card(owner, venue, "en")
    assert text("en", "venue.verify") not in buttons(card)
    assert text("en", "venue.unverified_note") not in str(card["text"])

    await owner.press(text("en", "venue.invite"))
    payload = (await owner.reply())["text"].splitlines()[-1].split("start=")[1]
    worker = await sandbox.chat("staff", language_code="ru")
    await worker.send(f"/start {payload}")
    assert (await worker.reply())["text"] == text("ru", "venue.joined", venue=venue.name)

    # A linked citizen checked in by IIN is told, so a look-up of them is never unseen.
    citizen, citizen_iin = await signed_up(sandbox, services)
    await worker.send(text("ru", "staff_menu.checkin"))
    assert (await worker.reply())["text"] == text("ru", "staff_checkin.ask_iin")
    await worker.send(citizen_iin)
    assert (await worker.reply())["text"] == "🔵 " + text(
        "ru", "staff_checkin.admit", colour=text("ru", "colour.blue")
    )
    told = await citizen.reply(wait=15)
    assert told["text"] == text("en", "notices.staff_checkin", venue=venue.name)
    assert await services.visits.occupancy(venue.id) == 1

    # Someone checked in at another venue: "elsewhere" (not where), the stay there stays
    # open, nothing is stored here, and they are told of the look-up.
    other = await open_venue(services)
    away, away_iin = await signed_up(sandbox, services)
    assert (await scan(away, other.entry))["text"].startswith("✅")
    await worker.send(away_iin)
    answer = (await worker.reply())["text"]
    assert answer == text("ru", "staff_checkin.elsewhere")
    assert other.venue.name not in answer
    assert await services.visits.occupancy(other.venue.id) == 1
    open_there = await last_stay(services, away_iin, other.venue.id)
    assert (open_there["checked_out_at"], open_there["checkout_kind"]) == (None, None)
    stored_here = await services.visits.pool.fetchval(
        "SELECT count(*) FROM visits WHERE iin = $1 AND venue_id = $2", away_iin, venue.id
    )
    assert stored_here == 0
    told = await away.reply(wait=15)
    assert told["text"] == text("en", "notices.staff_lookup", venue=venue.name)
    assert await _lookups(services, worker) == 2


async def test_a_venues_staff_together_have_a_daily_cap_of_look_ups_by_iin(
    sandbox: SandboxClient, platform: Platform, services: Services
) -> None:
    owner, venue, worker = await staffed_venue(sandbox, services)
    limit = platform.settings.venue_lookups_per_day
    await platform.redis.set(f"rate:staff-lookup:venue:{venue.id}", limit - 1, ex=86_400)

    await owner.send(text("en", "staff_menu.checkin"))
    await owner.reply()
    await owner.send(make_iin())
    assert (await owner.reply())["text"].startswith("🔵")  # the venue's last one today
    await worker.send(text("en", "staff_menu.checkin"))
    await worker.reply()
    await worker.send(make_iin())
    assert (await worker.reply())["text"] == text(
        "en", "staff_checkin.venue_rate_limited", venue=venue.name, limit=limit
    )
    # A check-out by IIN counts against the same cap.
    card = await venue_card(worker, venue, "en")
    assert text("en", "venue.checkout_one") in buttons(card)
    await worker.press(text("en", "venue.checkout_one"))
    await worker.reply()
    await worker.send(make_iin())
    assert (await worker.reply())["text"] == text(
        "en", "staff_checkin.venue_rate_limited", venue=venue.name, limit=limit
    )
    # The worker's own hourly quota is far from used: it is the venue's that ran out.
    used, _ = await window_of(
        platform.redis, f"staff-lookup:staff:{worker.user_id}", window=timedelta(hours=1)
    )
    assert used == 2 < platform.settings.staff_lookups_per_hour
    assert await _lookups(services, worker) == 0
    assert await services.visits.occupancy(venue.id) == 1
