"""The citizen bot's Mini App over HTTP: Telegram's signed initData checked (forged and
stale refused), a venue code's check-in stored once by the bot's own rules, the pass."""

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg
from aiohttp import ClientSession

from bots.sandbox.client import SandboxChat, SandboxClient
from citybots.platform import Platform
from citybots.wiring import Services
from presentation.i18n import text
from services.citizens import mask_iin
from tests.factories import Door, add_pcr, make_iin, make_phone, open_venue, scan, signed_up

_ROW = "venue_id, entrance_id, via, status, admitted, checkout_kind, staff_tg_user_id"


async def _open(platform: Platform, init_data: str) -> tuple[int, dict[str, Any]]:
    async with (
        ClientSession() as http,
        http.post(
            f"{platform.base_url}/miniapp/api/open",
            json={"init_data": init_data},
            headers={"Accept-Language": "en"},
        ) as response,
    ):
        return response.status, await response.json()


async def _scan(platform: Platform, chat: SandboxChat, token: str | None) -> dict[str, Any]:
    opened = await chat.open_web_app(start_param=token)
    status, answer = await _open(platform, opened["init_data"])
    assert status == 200, answer
    return answer


async def _rows(services: Services, iin: str) -> list[asyncpg.Record]:
    return list(
        await services.visits.pool.fetch(
            f"SELECT {_ROW}, tg_user_id FROM visits WHERE iin = $1 ORDER BY id",  # noqa: S608
            iin,
        )
    )


@dataclass(frozen=True)
class _SideBySide:
    """Two people with the same PCR result scanned one entry code, one in the Mini App and
    one in the chat; their stored visits are the same but for the account."""

    by_app: SandboxChat
    app_iin: str
    answer: dict[str, Any]  # the Mini App's
    bot_reply: dict[str, Any]
    app_row: asyncpg.Record


async def _side_by_side(
    sandbox: SandboxClient, platform: Platform, services: Services, door: Door, result: str
) -> _SideBySide:
    by_app, app_iin = await signed_up(sandbox, services)
    by_bot, bot_iin = await signed_up(sandbox, services)
    for iin in (app_iin, bot_iin):
        await add_pcr(services, iin, result)
    answer = await _scan(platform, by_app, door.entry)
    bot_reply = await scan(by_bot, door.entry)
    [by_app_row], [by_bot_row] = await _rows(services, app_iin), await _rows(services, bot_iin)
    assert dict(by_app_row) | {"tg_user_id": 0} == dict(by_bot_row) | {"tg_user_id": 0}
    return _SideBySide(by_app, app_iin, answer, bot_reply, by_app_row)


async def test_a_green_persons_check_in_is_stored_as_a_bot_scan_stores_it(
    sandbox: SandboxClient, platform: Platform, services: Services, door: Door
) -> None:
    scans = await _side_by_side(sandbox, platform, services, door, "negative")
    answer = scans.answer
    assert answer["screen"] == "pass"
    assert answer["colour"] == "green"
    assert answer["venue"] == door.venue.name
    assert answer["headline"] == text("en", "miniapp.admitted")
    assert answer["iin"] == mask_iin(scans.app_iin)
    assert scans.app_iin not in str(answer)
    assert answer["message"] == scans.bot_reply["text"]  # the bot's own words, no message sent
    assert scans.app_row["tg_user_id"] == scans.by_app.user_id
    assert await scans.by_app.updates(count=1, wait=0.5) == []  # the Mini App sent no message
    exit_answer = await _scan(platform, scans.by_app, door.exit)
    assert exit_answer["screen"] == "exit"
    assert exit_answer["headline"] == text("en", "miniapp.checked_out")
    [closed] = await services.visits.pool.fetch(
        "SELECT checkout_kind FROM visits WHERE iin = $1", scans.app_iin
    )
    assert closed["checkout_kind"] == "scan"


async def test_a_replayed_post_is_stored_once_and_answered_the_same(
    sandbox: SandboxClient, platform: Platform, services: Services, door: Door
) -> None:
    chat, iin = await signed_up(sandbox, services)
    await add_pcr(services, iin, "positive")
    opened = await chat.open_web_app(start_param=door.entry)
    answers = [await _open(platform, opened["init_data"]) for _ in range(3)]
    assert all(status == 200 for status, _ in answers)
    first = answers[0][1]
    assert first["screen"] == "refused"
    assert first["colour"] == "red"
    for _, again in answers[1:]:
        assert {k: again[k] for k in ("screen", "colour", "message", "venue", "at")} == {
            k: first[k] for k in ("screen", "colour", "message", "venue", "at")
        }
    rows = await _rows(services, iin)
    assert [(r["admitted"], r["status"]) for r in rows] == [(False, "red")]  # once
    # a new opening is a new scan, as a second scan in the chat would be
    await _scan(platform, chat, door.entry)
    assert len(await _rows(services, iin)) == 2


async def test_a_red_person_sees_the_refusal_and_nothing_is_stored_the_bot_would_not_store(
    sandbox: SandboxClient, platform: Platform, services: Services, door: Door
) -> None:
    scans = await _side_by_side(sandbox, platform, services, door, "positive")
    assert scans.answer["screen"] == "refused"
    assert scans.answer["headline"] == text("en", "miniapp.refused")
    assert scans.app_row["admitted"] is False
    assert await services.visits.occupancy(door.venue.id) == 0


async def test_a_forged_or_stale_init_data_is_refused_and_nothing_stored(
    sandbox: SandboxClient, platform: Platform, services: Services, door: Door
) -> None:
    chat, iin = await signed_up(sandbox, services)
    victim, _ = await signed_up(sandbox, services)
    opened = await chat.open_web_app(start_param=door.entry)
    fields = dict(parse_qsl(opened["init_data"]))
    # someone else's account in the signed data: the hash no longer matches
    forged = fields | {"user": fields["user"].replace(str(chat.user_id), str(victim.user_id))}
    tampered_hash = fields | {"hash": "0" * 64}
    for bad in (urlencode(forged), urlencode(tampered_hash), "", "hash=abc", "x" * 5000):
        status, answer = await _open(platform, bad)
        assert status == 401, answer
        assert answer == {"error": "forged", "message": text("en", "miniapp.forged")}
    # signed with another bot's token (the staff bot's Mini App data at the citizen's door)
    staff = await sandbox.chat("staff")
    other = await staff.open_web_app(url=f"{platform.base_url}/miniapp/", start_param="in_x")
    assert (await _open(platform, other["init_data"]))[0] == 401
    max_age = platform.settings.miniapp_init_data_max_age_seconds
    stale = await chat.open_web_app(
        start_param=door.entry, auth_date=int(time.time()) - max_age - 5
    )
    status, answer = await _open(platform, stale["init_data"])
    assert (status, answer["error"]) == (401, "stale")
    future = await chat.open_web_app(start_param=door.entry, auth_date=int(time.time()) + 3600)
    assert (await _open(platform, future["init_data"]))[1]["error"] == "stale"
    assert await _rows(services, iin) == []
    async with ClientSession() as http:
        for body in (b"not json", b"[1]", b'{"init_data": 5}', b"\xff\xfe"):
            async with http.post(f"{platform.base_url}/miniapp/api/open", data=body) as r:
                assert r.status == 401
        huge = b'{"init_data": "' + b"a" * 1_000_000 + b'"}'
        async with http.post(f"{platform.base_url}/miniapp/api/open", data=huge) as r:
            assert r.status == 413


async def test_my_status_opens_the_same_pass_and_an_unlinked_person_is_sent_to_the_bot(
    sandbox: SandboxClient, platform: Platform, services: Services
) -> None:
    chat, iin = await signed_up(sandbox, services)
    await add_pcr(services, iin, "negative")
    await chat.send(text("en", "citizen_menu.status"))
    card = await chat.reply()
    [[button]] = card["reply_markup"]["inline_keyboard"]
    assert button["text"] == text("en", "miniapp.open_pass")
    assert button["web_app"]["url"] == f"{platform.base_url}/miniapp/"
    opened = await chat.open_web_app(url=button["web_app"]["url"])
    status, answer = await _open(platform, opened["init_data"])
    assert status == 200
    assert (answer["screen"], answer["colour"]) == ("status", "green")
    assert answer["headline"] == text("en", "colour.green")
    assert answer["iin"] == mask_iin(iin)
    assert answer["name"]
    stranger = await sandbox.chat("citizen")
    token = (await open_venue(services)).entry
    answer = await _scan(platform, stranger, token)
    assert answer["screen"] == "link"
    assert answer["iin"] == ""
    assert answer["bot_link"].endswith(f"?start={token}")
    assert answer["message"] == text("en", "checkin.link_first")
    unknown = await _scan(platform, chat, "in_" + "x" * 20)
    assert (unknown["screen"], unknown["message"]) == (
        "problem",
        text("en", "checkin.unknown_code"),
    )


async def test_a_crowd_at_the_gate_is_checked_in_without_exhausting_the_pool(
    sandbox: SandboxClient, platform: Platform, services: Services
) -> None:
    """Four times the pool's connections at once: no request holds a connection while it
    waits for another (that would stall every request once the pool ran out)."""
    token = (await open_venue(services)).entry
    crowd = 4 * platform.settings.db_pool_size
    chats = [await sandbox.chat("citizen") for _ in range(crowd)]
    # linked as a registry import would leave them: no status looked up or cached yet
    iins = [make_iin() for _ in chats]
    await services.citizens.pool.executemany(
        "INSERT INTO citizens (tg_user_id, iin, phone) VALUES ($1, $2, $3)",
        [(chat.user_id, iin, make_phone()) for chat, iin in zip(chats, iins, strict=True)],
    )
    openings = [await chat.open_web_app(start_param=token) for chat in chats]
    answers = await asyncio.wait_for(
        asyncio.gather(*(_open(platform, o["init_data"]) for o in openings)), timeout=120
    )
    assert [status for status, _ in answers] == [200] * crowd
    assert {answer["screen"] for _, answer in answers} == {"pass"}
    stored = await services.visits.pool.fetchval(
        "SELECT count(*) FROM visits WHERE iin = ANY($1::text[]) AND admitted", iins
    )
    assert stored == crowd
