"""Venue code scans, which go through the citizen bot's one update pipeline (aiogram's
dispatcher, every middleware) and are stored in batches (services/visits.py): every
answer, duplicates and simultaneous scans, a middleware added to the dispatcher, and
PostgreSQL failing in the middle of a batch."""

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update

from bots.dispatcher import CityDispatcher
from bots.sandbox.client import SandboxChat, SandboxClient
from citybots.platform import Platform
from citybots.wiring import Services
from presentation.i18n import text
from services.visits import CheckInRequest
from tests.e2e.conftest import delivered_at_once
from tests.e2e.test_webhook_mode import _update
from tests.factories import Door, add_pcr, open_venue, scan, signed_up, venue_codes

Person = tuple[SandboxChat, str]
Pair = tuple[Person, Person]


@pytest.fixture
async def person(sandbox: SandboxClient, services: Services) -> Person:
    """A citizen-bot user who signed up: their chat and IIN."""
    return await signed_up(sandbox, services)


@pytest.fixture
async def two(person: Person, sandbox: SandboxClient, services: Services) -> Pair:
    """Two citizen-bot users who signed up."""
    return person, await signed_up(sandbox, services)


def _citizen_dispatcher(platform: Platform) -> CityDispatcher:
    dispatcher = platform.bots["citizen"].dispatcher
    assert dispatcher is not None
    return dispatcher


def _updates_timed(platform: Platform) -> float:
    """How many of the citizen bot's updates the latency histogram has recorded."""
    count = platform.metrics.registry.get_sample_value(
        "citybots_update_seconds_count", {"bot": "citizen"}
    )
    return count or 0.0


def _deliver_together(platform: Platform, *updates: dict[str, Any]) -> None:
    """Hand updates to the citizen bot as one getUpdates answer would: one batch."""
    running = platform.bots["citizen"]
    assert running.dispatcher is not None
    for update in updates:
        running.dispatcher.take_raw(running.bot, update)


async def _visits(services: Services, iin: str) -> list[asyncpg.Record]:
    return list(
        await services.visits.pool.fetch(
            "SELECT venue_id, status, admitted, checkout_kind, via, checked_out_at IS NULL AS open"
            " FROM visits WHERE iin = $1 ORDER BY id",
            iin,
        )
    )


async def _scenario(
    sandbox: SandboxClient, services: Services
) -> tuple[list[tuple[str, Any]], list[list[tuple[Any, ...]]]]:
    """Every kind of answer a scan gets, with names replaced by roles; the rows stored."""
    warn = await open_venue(services, capacity=1)
    refuse = await open_venue(services, capacity=1)
    await services.venues.set_capacity(refuse.venue.id, 1, "refuse")
    green, green_iin = await signed_up(sandbox, services)
    await add_pcr(services, green_iin, "negative")
    blue, blue_iin = await signed_up(sandbox, services)
    red, red_iin = await signed_up(sandbox, services)
    await add_pcr(services, red_iin, "positive")
    names = {warn.venue.name: "WARN", refuse.venue.name: "REFUSE"}
    steps: list[tuple[SandboxChat, Door, str]] = [
        (green, warn, "entry"),
        (green, warn, "entry"),
        (blue, warn, "entry"),
        (green, refuse, "entry"),
        (blue, refuse, "entry"),
        (red, warn, "entry"),
        (green, refuse, "exit"),
        (green, refuse, "exit"),
        (blue, warn, "exit"),
    ]
    answers = []
    for chat, door, direction in steps:
        reply = await scan(chat, door.codes[direction])
        shown = reply["text"]
        for name, role in names.items():
            shown = shown.replace(name, role)
        answers.append((shown, reply.get("reply_markup")))
    roles = {warn.venue.id: "WARN", refuse.venue.id: "REFUSE"}
    rows = [
        [(roles[r["venue_id"]], *tuple(r)[1:]) for r in await _visits(services, iin)]
        for iin in (green_iin, blue_iin, red_iin)
    ]
    return answers, rows


async def test_scans_get_every_answer_and_store_every_visit(
    sandbox: SandboxClient, services: Services
) -> None:
    answers, rows = await _scenario(sandbox, services)
    assert rows == [
        [
            ("WARN", "green", True, "moved", "qr", False),
            ("REFUSE", "green", True, "scan", "qr", False),
        ],
        [
            ("WARN", "blue", True, "scan", "qr", False),
            ("REFUSE", "blue", False, "refused", "qr", False),
        ],
        [("WARN", "red", False, "refused", "qr", False)],
    ]
    texts = [a for a, _ in answers]
    green, blue = text("en", "colour.green"), text("en", "colour.blue")
    assert texts[0] == text(
        "en", "checkin.admitted", venue="WARN", colour=green, occupancy=1, capacity=1
    )
    assert texts[1] == text("en", "checkin.already_inside", venue="WARN")
    assert texts[2] == text(
        "en", "checkin.admitted_crowded", venue="WARN", colour=blue, occupancy=2, capacity=1
    )
    assert texts[3].startswith(text("en", "checkin.moved", venue="WARN"))
    assert texts[4] == text("en", "checkin.full", occupancy=1, capacity=1)
    assert texts[5].startswith("⛔")
    assert texts[6] == text("en", "checkin.checked_out", venue="REFUSE")
    assert texts[7] == text("en", "checkin.not_inside", venue="REFUSE")
    assert answers[0][1]["keyboard"][0][0]["text"] == text("en", "citizen_menu.status")


async def test_a_scan_is_timed_by_the_pipeline_like_any_update(
    platform: Platform, door: Door, person: Person
) -> None:
    chat, _ = person
    timed = _updates_timed(platform)
    assert (await scan(chat, door.entry))["text"].startswith("✅")
    # The person's next update is handled once the scan's is finished, timing included.
    await scan(chat, door.exit)
    assert _updates_timed(platform) - timed >= 1


async def test_a_delivery_repeated_in_one_batch_and_later_makes_one_visit_and_one_reply(
    platform: Platform, services: Services, door: Door, person: Person
) -> None:
    chat, iin = person
    delivery = _update(chat, f"/start {door.entry}")
    _deliver_together(platform, delivery, delivery, delivery)
    assert [m["text"][:1] for m in await chat.replies(1)] == ["✅"]
    _deliver_together(platform, delivery)
    await chat.send(f"/start {door.exit}")  # a marker: answered after the repeat
    assert [m["text"] for m in await chat.replies(1)] == [
        text("en", "checkin.checked_out", venue=door.venue.name)
    ]
    rows = await _visits(services, iin)
    assert len(rows) == 1
    assert rows[0]["admitted"]


async def test_two_scans_in_the_same_moment_make_one_visit_and_capacity_holds(
    sandbox: SandboxClient, platform: Platform, services: Services, person: Person
) -> None:
    door = await open_venue(services, capacity=1)
    await services.venues.set_capacity(door.venue.id, 1, "refuse")
    chat, iin = person
    _deliver_together(
        platform,
        _update(chat, f"/start {door.entry}"),
        _update(chat, f"/start {door.entry}"),
    )
    first, second = await chat.replies(2)
    assert first["text"].startswith("✅")
    assert second["text"] == text("en", "checkin.already_inside", venue=door.venue.name)
    assert len(await _visits(services, iin)) == 1

    other, other_iin = await signed_up(sandbox, services)
    third, third_iin = await signed_up(sandbox, services)
    await scan(chat, door.exit)
    _deliver_together(
        platform,
        _update(other, f"/start {door.entry}"),
        _update(third, f"/start {door.entry}"),
    )
    answers = [(await other.reply())["text"], (await third.reply())["text"]]
    full = text("en", "checkin.full", occupancy=1, capacity=1)
    assert sorted(a.startswith("✅") for a in answers) == [False, True]
    assert full in answers
    assert await services.visits.occupancy(door.venue.id) == 1
    stored = await _visits(services, other_iin) + await _visits(services, third_iin)
    assert sorted(r["admitted"] for r in stored) == [False, True]


async def test_a_batch_waiting_on_postgresql_holds_back_only_its_own_people(
    platform: Platform, services: Services, door: Door, two: Pair, database_url: str
) -> None:
    """Batches are stored side by side; a person's later scan waits for the batch that
    holds their earlier one, so their scans take effect and are answered in order."""
    (slow, slow_iin), (quick, quick_iin) = two
    blocker = await asyncpg.connect(database_url)
    try:  # the check-in function takes this lock per person: the first batch waits on it
        await blocker.execute("SELECT pg_advisory_lock(hashtextextended($1, 7))", slow_iin)
        _deliver_together(platform, _update(slow, f"/start {door.entry}"))
        await asyncio.sleep(0.3)
        _deliver_together(
            platform,
            _update(slow, f"/start {door.exit}"),
            _update(quick, f"/start {door.entry}"),
        )
        assert (await quick.reply())["text"].startswith("✅")
        assert await slow.updates(count=0, wait=0.5) == []
    finally:
        await blocker.close()  # the lock goes with the session
    entered, left = await slow.replies(2)
    assert entered["text"].startswith("✅")
    assert left["text"] == text("en", "checkin.checked_out", venue=door.venue.name)
    rows = await _visits(services, slow_iin)
    assert [(r["admitted"], r["checkout_kind"]) for r in rows] == [(True, "scan")]
    assert len(await _visits(services, quick_iin)) == 1


async def test_a_reply_telegram_refuses_for_a_while_arrives_once(
    sandbox: SandboxClient, platform: Platform, services: Services, door: Door, person: Person
) -> None:
    """A 429: aiogram's client waits it out and sends the reply again; the visit is
    stored once. A 5xx is not sent again."""
    chat, iin = person
    await sandbox.inject_faults(count=1, status=429, retry_after=1, methods=["sendMessage"])
    _deliver_together(platform, _update(chat, f"/start {door.entry}"))
    assert (await chat.reply(wait=15))["text"].startswith("✅")
    assert await chat.updates(count=0, wait=1.5) == []
    assert len(await _visits(services, iin)) == 1

    # A 5xx: Telegram may have delivered it, so it is not sent again; the person is told
    # that something went wrong, as for any update, and a re-scan answers.
    await sandbox.inject_faults(count=1, status=502, methods=["sendMessage"])
    _deliver_together(platform, _update(chat, f"/start {door.exit}"))
    assert (await chat.reply())["text"] == text("en", "errors.internal")
    assert (await scan(chat, door.exit))["text"] == text(
        "en", "checkin.not_inside", venue=door.venue.name
    )
    rows = await _visits(services, iin)
    assert [(r["admitted"], r["checkout_kind"]) for r in rows] == [(True, "scan")]


async def test_unusual_scans_go_the_normal_way_with_its_messages(
    sandbox: SandboxClient, services: Services, door: Door, person: Person
) -> None:
    venue, old = door.venue, door.codes
    await services.venues.rotate_codes(venue.id)
    codes = await venue_codes(services, venue)

    stranger = await sandbox.chat("citizen", language_code="en")  # no IIN linked
    await stranger.send(f"/start {codes['entry']}")
    assert text("en", "checkin.link_first") in (await stranger.reply())["text"]

    chat, iin = person
    await chat.send(f"/start in_{secrets.token_urlsafe(16)}")  # forged
    assert (await chat.reply())["text"] == text("en", "checkin.unknown_code")
    await chat.send(f"/start {old['entry']}")  # revoked by the rotation
    assert (await chat.reply())["text"] == text("en", "checkin.revoked_code", venue=venue.name)
    await chat.send(text("en", "citizen_menu.dispute"))  # a conversation in progress
    await chat.reply()
    assert (await scan(chat, codes["entry"]))["text"].startswith("✅")
    assert len(await _visits(services, iin)) == 1

    assert (await scan(chat, codes["exit"]))["text"] == text(
        "en", "checkin.checked_out", venue=venue.name
    )


async def test_a_connection_lost_mid_batch_is_retried_and_nothing_is_written_twice(
    platform: Platform, services: Services, door: Door, two: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    (first, first_iin), (second, second_iin) = two
    real = services.visits.check_in_many
    failures = []

    async def once_lost(requests: list[CheckInRequest], conn: Any = None, **known: Any) -> Any:
        if not failures:  # inside the batch's transaction
            failures.append(len(requests))
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection lost")
        return await real(requests, conn, **known)

    monkeypatch.setattr(services.visits, "check_in_many", once_lost)
    first_scan = _update(first, f"/start {door.entry}")
    _deliver_together(platform, first_scan, _update(second, f"/start {door.entry}"))
    assert (await first.reply())["text"].startswith("✅")
    assert (await second.reply())["text"].startswith("✅")
    assert len(failures) == 1
    assert len(await _visits(services, first_iin)) == 1
    assert len(await _visits(services, second_iin)) == 1
    bot_id = platform.bots["citizen"].bot.id
    done = await services.ledger.pool.fetchval(
        "SELECT done_at IS NOT NULL FROM processed_updates WHERE bot_id = $1 AND update_id = $2",
        bot_id,
        first_scan["update_id"],
    )
    assert done is True


async def test_postgres_down_for_a_batch_leaves_nothing_half_written_and_says_so(
    platform: Platform, services: Services, door: Door, two: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    (first, first_iin), (second, second_iin) = two

    async def down(requests: list[CheckInRequest], conn: Any = None, **known: Any) -> Any:
        raise asyncpg.exceptions.ConnectionDoesNotExistError("connection lost")

    monkeypatch.setattr(services.visits, "check_in_many", down)
    monkeypatch.setattr(services.visits, "retry_for", 0.3)
    scans = [_update(c, f"/start {door.entry}") for c in (first, second)]
    _deliver_together(platform, *scans)
    assert (await first.reply())["text"] == text("en", "errors.unavailable")
    assert (await second.reply())["text"] == text("en", "errors.unavailable")
    assert await _visits(services, first_iin) == []
    assert await _visits(services, second_iin) == []
    bot_id = platform.bots["citizen"].bot.id
    done = await services.ledger.pool.fetch(
        "SELECT done_at FROM processed_updates WHERE bot_id = $1 AND update_id = ANY($2)",
        bot_id,
        [s["update_id"] for s in scans],
    )
    assert all(r["done_at"] is None for r in done)  # a redelivery will be handled

    monkeypatch.undo()
    _deliver_together(platform, scans[0])  # Telegram delivers it again: now it works
    assert (await first.reply())["text"].startswith("✅")
    assert len(await _visits(services, first_iin)) == 1


async def test_one_scan_failing_in_a_batch_does_not_lose_the_others(
    platform: Platform, services: Services, door: Door, two: Pair
) -> None:
    (faulty, faulty_iin), (fine, fine_iin) = two
    assert re.fullmatch(r"[0-9]{12}", faulty_iin)
    pool = services.visits.pool
    trigger = f"test_fault_{faulty_iin}"
    await pool.execute(
        f"""
        CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.iin = '{faulty_iin}' THEN RAISE EXCEPTION 'a fault for this test'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER {trigger} BEFORE INSERT ON visits
            FOR EACH ROW EXECUTE FUNCTION {trigger}();
        """
    )
    try:
        _deliver_together(
            platform,
            _update(faulty, f"/start {door.entry}"),
            _update(fine, f"/start {door.entry}"),
        )
        assert (await fine.reply())["text"].startswith("✅")
        assert (await faulty.reply())["text"] == text("en", "errors.internal")
    finally:
        await pool.execute(f"DROP TRIGGER {trigger} ON visits; DROP FUNCTION {trigger}()")
    assert len(await _visits(services, fine_iin)) == 1
    assert await _visits(services, faulty_iin) == []


async def test_a_scan_posted_five_times_at_once_to_the_webhook_makes_one_visit_and_one_reply(
    webhook_platform: Platform, webhook_api: tuple[str, dict[str, str]]
) -> None:
    services = webhook_platform.services
    door = await open_venue(services)
    async with SandboxClient(webhook_api[0]) as sandbox:
        chat, iin = await signed_up(sandbox, services)
        await chat.send(f"/start {door.entry}")  # through the sandbox's own delivery
        assert (await chat.reply())["text"].startswith("✅")
        delivery = _update(chat, f"/start {door.exit}")
        url = f"{webhook_platform.base_url}/webhook/citizen"
        assert await delivered_at_once(url, delivery) == [200] * 5
        replies = await chat.updates(count=0, wait=0)
        assert [m["text"] for m in replies] == [
            text("en", "checkin.checked_out", venue=door.venue.name)
        ]
    rows = await _visits(services, iin)
    assert len(rows) == 1
    assert rows[0]["checkout_kind"] == "scan"


class Maintenance(BaseMiddleware):
    """What an operator might add one day: every message answered with a notice and
    handled no further."""

    NOTICE = "Down for maintenance, back soon"

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        if event.message is not None:
            await event.message.answer(self.NOTICE)
            return None
        return await handler(event, data)


async def test_a_middleware_added_to_the_dispatcher_applies_to_venue_scans(
    platform: Platform, services: Services, door: Door, person: Person
) -> None:
    chat, iin = person
    dispatcher = _citizen_dispatcher(platform)
    maintenance = Maintenance()
    dispatcher.update.outer_middleware.register(maintenance)
    try:
        assert (await scan(chat, door.entry))["text"] == Maintenance.NOTICE
        _deliver_together(platform, _update(chat, f"/start {door.entry}"))
        assert (await chat.reply())["text"] == Maintenance.NOTICE
        assert await _visits(services, iin) == []
    finally:
        dispatcher.update.outer_middleware.unregister(maintenance)
    assert (await scan(chat, door.entry))["text"].startswith("✅")
    assert len(await _visits(services, iin)) == 1
