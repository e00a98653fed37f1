"""What happens when a linked citizen scans a venue's QR code (shared by the check-in
flow and by sign-up, which resumes a scan that had to wait for the IIN)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram.types import Message

from flows.common.keyboards import main_menu
from flows.context import BotProfile
from flows.i18n import text
from flows.status.describe import reason_text
from services.venues import CodeState, VenueService
from services.visits import CheckIn, VisitService


async def process_scan(
    message: Message,
    token: str,
    iin: str,
    *,
    user_id: int,
    lang: str,
    venues: VenueService,
    visits: VisitService,
    profile: BotProfile,
    city_tz: ZoneInfo,
) -> None:
    target = await venues.resolve(token)
    menu = main_menu(lang, profile.menu)
    if target.state is CodeState.UNKNOWN or target.venue is None:
        await message.answer(text(lang, "checkin.unknown_code"), reply_markup=menu)
        return
    venue = target.venue
    if target.state is CodeState.REVOKED:
        await message.answer(
            text(lang, "checkin.revoked_code", venue=venue.name), reply_markup=menu
        )
        return
    if target.direction == "exit":
        left = await visits.check_out(iin, venue.id)
        key = "checkin.checked_out" if left else "checkin.not_inside"
        await message.answer(text(lang, key, venue=venue.name), reply_markup=menu)
        return
    result = await visits.check_in(
        iin, venue, entrance_id=target.entrance_id, via="qr", tg_user_id=user_id
    )
    colour = text(lang, f"colour.{result.status.colour.value}")
    lines = []
    if result.moved_from:
        lines.append(text(lang, "checkin.moved", venue=result.moved_from))
    if result.outcome is CheckIn.ADMITTED:
        key = "checkin.admitted_crowded" if result.over_capacity else "checkin.admitted"
        lines.append(
            text(
                lang,
                key,
                venue=venue.name,
                colour=colour,
                occupancy=result.occupancy,
                capacity=venue.capacity or 0,
            )
        )
    elif result.outcome is CheckIn.ALREADY_INSIDE:
        lines.append(text(lang, "checkin.already_inside", venue=venue.name))
    elif result.outcome is CheckIn.FULL:
        lines.append(
            text(lang, "checkin.full", occupancy=result.occupancy, capacity=venue.capacity or 0)
        )
    else:
        lines.append(
            text(lang, "checkin.refused", colour=colour, reason=reason_text(lang, result.status))
        )
    await message.answer("\n".join(lines), reply_markup=menu)
