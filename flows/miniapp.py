"""The citizen bot's Mini App: a live status pass, and check-in and check-out at a venue's
door without a bot message.

Telegram opens the page with ``initData`` signed with the bot's token (HMAC-SHA256, as
``aiogram.utils.web_app`` checks it); nothing else from the page is trusted: who it is
(``user.id``), which code was scanned (``start_param``, from a direct link
``https://t.me/<bot>/<app>?startapp=<token>``) and when it was opened (``auth_date``,
refused once older than the setting) all come from the signed data. A scan is stored by
the same service calls and rules as the bot's (services/visits.py), in one transaction
with the opening's entry in the ledger (services/miniapp.py), so a repeated POST shows
the same pass and stores nothing more. The answer's words are the bot's own
(flows/checkin/scan.py, flows/status/describe.py); no message is sent, so a busy door
is bounded by the web app, not by the Bot API's 30 messages a second.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.utils.web_app import safe_parse_webapp_init_data

from flows.checkin.scan import checked_in_text, checked_out_text, code_problem
from flows.context import BotLinks
from flows.status.describe import status_lines
from presentation.i18n import language_for, text
from presentation.keys import COLOUR_NAMES, MINIAPP_LABELS
from services.citizens import CitizenService, mask_iin
from services.miniapp import OpeningLedger
from services.status import Status, StatusService
from services.users import LanguagePreferences
from services.venues import TOKEN_PREFIX, CodeTarget, VenueService
from services.visits import CheckIn, CheckInRequest, VisitService

MAX_INIT_DATA = 4096  # Telegram's initData is well under 1 KB; more is no initData of its
FUTURE_SKEW = timedelta(seconds=60)  # a signing clock slightly ahead of ours


class Refusal(enum.Enum):
    FORGED = "forged"  # not signed with the bot's token (or no user in it)
    STALE = "stale"  # signed, but opened longer ago than the setting allows


class InitDataRefused(Exception):
    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Opening:
    """One opening of the Mini App, as Telegram signed it."""

    init_hash: str
    user_id: int
    name: str
    language_code: str | None
    start_param: str | None
    auth_date: datetime


def verify_opening(
    token: str, init_data: str, *, max_age: timedelta, now: datetime | None = None
) -> Opening:
    """The opening ``init_data`` describes, once its signature (with the bot's ``token``)
    and its age check out; :class:`InitDataRefused` otherwise."""
    if not init_data or len(init_data) > MAX_INIT_DATA:
        raise InitDataRefused(Refusal.FORGED)
    try:
        data = safe_parse_webapp_init_data(token, init_data)
    except ValueError:  # a bad signature, or signed data that is no initData
        raise InitDataRefused(Refusal.FORGED) from None
    if data.user is None:
        raise InitDataRefused(Refusal.FORGED)
    age = (now or datetime.now(UTC)) - data.auth_date
    if age > max_age or age < -FUTURE_SKEW:
        raise InitDataRefused(Refusal.STALE)
    user = data.user
    name = " ".join(part for part in (user.first_name, user.last_name) if part)
    return Opening(data.hash, user.id, name, user.language_code, data.start_param, data.auth_date)


def _labels(lang: str) -> dict[str, str]:
    return {key: text(lang, MINIAPP_LABELS[key]) for key in ("title", "now", "live_hint")}


@dataclass(eq=False, kw_only=True)
class MiniApp:
    """What the Mini App's endpoint calls; ``token`` is set once the citizen bot knows it
    (until then every opening is refused as forged)."""

    citizens: CitizenService
    statuses: StatusService
    venues: VenueService
    visits: VisitService
    languages: LanguagePreferences
    openings: OpeningLedger
    links: BotLinks
    default_language: str
    city_tz: ZoneInfo
    max_age: timedelta
    token: str | None = field(default=None, init=False)

    def verify(self, init_data: str, now: datetime | None = None) -> Opening:
        if self.token is None:
            raise InitDataRefused(Refusal.FORGED)
        return verify_opening(self.token, init_data, max_age=self.max_age, now=now)

    async def open(self, opening: Opening) -> dict[str, Any]:
        """The pass to show for an opening: the scan it carries stored (once), or the
        person's status; the answer is plain JSON for the page."""
        lang = await language_for(
            self.languages, opening.user_id, opening.language_code, self.default_language
        )
        token = opening.start_param
        is_scan = token is not None and token.startswith(tuple(TOKEN_PREFIX.values()))
        iin = (await self.citizens.linked_iins([opening.user_id])).get(opening.user_id)
        if iin is None:
            link = self.links.deep_link("citizen", token if is_scan and token else "")
            answer = {
                "screen": "link",
                "message": text(lang, "checkin.link_first" if is_scan else "status.not_linked"),
                "bot_link": link.removesuffix("?start="),
                "action": text(lang, "miniapp.open_bot"),
            }
            return self._framed(answer, lang, opening, None)
        if not is_scan or token is None:
            status = await self.statuses.status(iin)
            return self._framed(self._status(lang, status), lang, opening, iin)
        target = await self.venues.resolve(token)
        problem = code_problem(lang, target)
        if problem is not None or target.venue is None:
            return self._framed({"screen": "problem", "message": problem}, lang, opening, iin)
        return self._framed(await self._scan(lang, opening, iin, target), lang, opening, iin)

    async def _scan(
        self, lang: str, opening: Opening, iin: str, target: CodeTarget
    ) -> dict[str, Any]:
        venue = target.venue
        assert venue is not None
        # Looked up before the transaction takes its connection: one request never holds
        # a pooled connection while waiting for another (a busy gate would stall on that).
        status = await self.statuses.status(iin)
        async with self.openings.pool.acquire() as conn, conn.transaction():
            stored = await self.openings.claim(conn, opening.init_hash, opening.user_id)
            if stored is not None:
                return stored
            now = datetime.now(UTC)
            if target.direction == "exit":
                [left] = await self.visits.check_out_many([(iin, venue.id)], conn)
                answer = {
                    "screen": "exit",
                    "colour": status.colour.value,
                    "headline": text(lang, "miniapp.checked_out" if left else "miniapp.status"),
                    "message": checked_out_text(lang, venue, left),
                }
            else:
                request = CheckInRequest(
                    iin, venue, target.entrance_id, "qr", tg_user_id=opening.user_id
                )
                [result] = await self.visits.check_in_many([request], conn, known={iin: status})
                inside = result.outcome in (CheckIn.ADMITTED, CheckIn.ALREADY_INSIDE)
                answer = {
                    "screen": "pass" if inside else "refused",
                    "colour": result.status.colour.value,
                    "headline": text(lang, "miniapp.admitted" if inside else "miniapp.refused"),
                    "message": checked_in_text(lang, venue, result),
                }
            answer |= {"venue": venue.name, "at": now.isoformat()}
            await self.openings.done(conn, opening.init_hash, answer)
        return answer

    def _status(self, lang: str, status: Status) -> dict[str, Any]:
        return {
            "screen": "status",
            "colour": status.colour.value,
            "headline": text(lang, COLOUR_NAMES[status.colour]),
            "message": "\n".join(status_lines(lang, status, self.city_tz)),
            "at": status.checked_at.isoformat(),
        }

    def _framed(
        self, answer: dict[str, Any], lang: str, opening: Opening, iin: str | None
    ) -> dict[str, Any]:
        """The answer with who, when and the page's words: never stored (a repeat is
        framed afresh), so the ledger keeps no name and no IIN."""
        return answer | {
            "lang": lang,
            "name": opening.name,
            "iin": mask_iin(iin) if iin else "",
            "tz": self.city_tz.key,
            "server_time": datetime.now(UTC).isoformat(),
            "labels": _labels(lang),
        }
