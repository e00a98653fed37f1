"""What happens when a linked citizen scans a venue's QR code (shared by the check-in
flow and by sign-up, which resumes a scan that had to wait for the IIN). The visit is
stored in a batch with the scans made at the same time (services/visits.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram.types import Message

from flows.common.replies import reply_with_menu
from flows.context import BotProfile
from flows.status.describe import reason_text
from presentation.i18n import text
from presentation.keys import COLOUR_NAMES
from services.venues import CodeState, CodeTarget, Venue, VenueService
from services.visits import CheckIn, CheckInResult, VisitService


def code_problem(lang: str, target: CodeTarget) -> str | None:
    """The answer to a token that is not a current code, or None when it is one."""
    if target.state is CodeState.UNKNOWN or target.venue is None:
        return text(lang, "checkin.unknown_code")
    if target.state is CodeState.REVOKED:
        return text(lang, "checkin.revoked_code", venue=target.venue.name)
    return None


def checked_out_text(lang: str, venue: Venue, left: str | None) -> str:
    """The answer to an exit scan (``left``: the venue whose stay it closed, if any)."""
    key = "checkin.checked_out" if left else "checkin.not_inside"
    return text(lang, key, venue=venue.name)


def checked_in_text(lang: str, venue: Venue, result: CheckInResult) -> str:
    """The answer to an entry scan."""
    colour = text(lang, COLOUR_NAMES[result.status.colour])
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
    return "\n".join(lines)


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
    assert message.bot is not None
    bot, chat_id = message.bot, message.chat.id
    problem = code_problem(lang, target)
    if problem is not None or target.venue is None:
        await reply_with_menu(bot, chat_id, problem or "", lang, profile.menu)
        return
    venue = target.venue
    if target.direction == "exit":
        left = await visits.check_out(iin, venue.id)
        await reply_with_menu(
            bot, chat_id, checked_out_text(lang, venue, left), lang, profile.menu
        )
        return
    result = await visits.check_in(
        iin, venue, entrance_id=target.entrance_id, via="qr", tg_user_id=user_id
    )
    await reply_with_menu(bot, chat_id, checked_in_text(lang, venue, result), lang, profile.menu)
