"""Webhook mode: a sandbox served apart posts updates to the platform as Telegram would."""

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from aiohttp import ClientSession

from bots.sandbox.client import SandboxChat, SandboxClient
from citybots.platform import Platform
from citybots.settings import SettingsError, load_settings
from presentation.i18n import text
from services.validation import Coordinates
from tests.e2e.conftest import WEBHOOK_SECRET, delivered_at_once
from tests.factories import help_reply

SECRET = WEBHOOK_SECRET


@pytest.fixture
async def client(
    webhook_platform: Platform, webhook_api: tuple[str, dict[str, str]]
) -> AsyncIterator[SandboxClient]:
    async with SandboxClient(webhook_api[0]) as sandbox:
        yield sandbox


async def _started_chat(client: SandboxClient) -> SandboxChat:
    chat = await client.chat("citizen", language_code="en")
    await chat.send("/start")
    await chat.reply()
    return chat


def _update(chat: SandboxChat, text_: str, update_id: int | None = None) -> dict[str, Any]:
    """A message update as the Bot API's JSON, as Telegram would post it to a webhook."""
    user = {"id": chat.user_id, "is_bot": False, "first_name": "Test user", "language_code": "en"}
    return {
        "update_id": update_id or secrets.randbelow(10**9) + 10**9,
        "message": {
            "message_id": 10_000 + secrets.randbelow(10**6),
            "date": 1_700_000_000,
            "from": user,
            "chat": {"id": chat.user_id, "type": "private", "first_name": "Test user"},
            "text": text_,
        },
    }


def test_webhook_mode_refuses_to_start_without_a_secret() -> None:
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        load_settings(_env_file=None, webhook_base_url="https://bots.example.kz")


async def test_every_bot_answers_start_through_its_webhook(
    webhook_platform: Platform, client: SandboxClient
) -> None:
    health = await webhook_platform.health()
    assert {b["mode"] for b in health["bots"].values()} == {"webhook"}
    for bot in ("citizen", "staff", "quarantine", "doctor", "agent"):
        chat = await client.chat(bot, language_code="kk")
        await chat.send("/start")
        reply = await chat.reply()
        assert reply["text"].startswith(text("kk", f"start.greeting.{bot}", name="Test user"))


@pytest.mark.parametrize("header", [None, "wrong-secret-0000000000"])
async def test_a_request_without_the_right_secret_is_refused_before_parsing(
    webhook_platform: Platform, header: str | None
) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": header} if header else {}
    async with (
        ClientSession() as http,
        http.post(
            f"{webhook_platform.base_url}/webhook/citizen", data=b"{not json", headers=headers
        ) as response,
    ):
        assert response.status == 401


async def test_a_malformed_update_is_refused_with_a_clear_status(
    webhook_platform: Platform,
) -> None:
    async with (
        ClientSession() as http,
        http.post(
            f"{webhook_platform.base_url}/webhook/citizen",
            data=b"{not json",
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        ) as response,
    ):
        assert response.status == 400


_MESSAGE = {
    "message_id": 1,
    "date": 1700000000,
    "chat": {"id": 42, "type": "private"},
    "from": {"id": 42, "is_bot": False, "first_name": "X"},
    "text": "/start",
}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # past the JSON parser's recursion
        b'{"update_id": 1, "message": ' + b'{"a": ' * 100 + b"1" + b"}" * 100 + b"}",
        b'{"update_id": 1000000000000000000000000000000, "message": %s}'
        % json.dumps(_MESSAGE).encode(),
        b'{"update_id": -1, "message": %s}' % json.dumps(_MESSAGE).encode(),
        b'{"message": %s}' % json.dumps(_MESSAGE).encode(),
        b'{"update_id": 7, "message": {"text": "\xff"}}',
    ],
    ids=[
        "nested-100000",
        "nested-100",
        "update-id-10e30",
        "update-id-negative",
        "no-update-id",
        "bad",
    ],
)
async def test_a_hostile_update_gets_400_never_500(
    webhook_platform: Platform, body: bytes
) -> None:
    async with (
        ClientSession() as http,
        http.post(
            f"{webhook_platform.base_url}/webhook/citizen",
            data=body,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        ) as response,
    ):
        assert response.status == 400
        assert (await response.json())["ok"] is False


async def test_the_200_comes_after_the_update_was_handled(
    webhook_platform: Platform, client: SandboxClient
) -> None:
    chat = await _started_chat(client)
    async with (
        ClientSession() as http,
        http.post(
            f"{webhook_platform.base_url}/webhook/citizen",
            json=_update(chat, "/help"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        ) as response,
    ):
        assert response.status == 200
    assert [m["text"] for m in await chat.updates(count=0, wait=0)] == [
        help_reply("en", "citizen")
    ]


async def test_an_update_posted_five_times_at_once_takes_effect_once(
    webhook_platform: Platform, client: SandboxClient
) -> None:
    chat = await _started_chat(client)
    update = _update(chat, "/help")
    url = f"{webhook_platform.base_url}/webhook/citizen"
    assert await delivered_at_once(url, update) == [200] * 5
    await asyncio.sleep(0.3)
    replies = await chat.updates(count=0, wait=0)
    assert [m["text"] for m in replies] == [help_reply("en", "citizen")]


async def test_a_live_location_move_posted_five_times_is_stored_once_before_the_200(
    webhook_platform: Platform,
) -> None:
    q = webhook_platform.services.quarantine
    doctor = secrets.randbelow(10**9) + 10**9
    await q.join_as_doctor(
        await q.create_doctor_invite("Almaly", created_by="test"), doctor, "Dr Test"
    )
    case = await q.enrol(
        doctor,
        isolation_end=date.today() + timedelta(days=5),
        home=Coordinates(43.2389, 76.8897),
    )
    patient = secrets.randbelow(10**9) + 10**9
    await q.consent(case.invite_token, patient)
    user = {"id": patient, "is_bot": False, "first_name": "Patient"}
    update = {
        "update_id": secrets.randbelow(10**9) + 10**9,
        "edited_message": {
            "message_id": 5,
            "date": 1_800_000_000,
            "edit_date": 1_800_000_030,
            "from": user,
            "chat": {"id": patient, "type": "private", "first_name": "Patient"},
            "location": {"latitude": 43.2390, "longitude": 76.8898, "live_period": 28800},
        },
    }
    url = f"{webhook_platform.base_url}/webhook/quarantine"
    assert await delivered_at_once(url, update, tries=1) == [200] * 5  # none tried again
    stored = await q.pool.fetchval(
        "SELECT count(*) FROM location_fixes WHERE case_id = $1", case.id
    )
    assert stored == 1


async def test_an_update_met_by_an_outage_after_its_person_was_told_is_delivered_again(
    webhook_platform: Platform, client: SandboxClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL unreachable: the first update gets "temporarily unavailable" (200); the
    person's next one, while the notice's once-a-minute limit holds, is answered 503
    rather than acknowledged unanswered, and its redelivery after the outage is handled."""
    chat = await _started_chat(client)
    dispatcher = webhook_platform.bots["citizen"].dispatcher
    assert dispatcher is not None
    ledger = dispatcher["ledger"]
    monkeypatch.setattr(dispatcher, "claim_waits_for", 0.0)

    async def unreachable(bot_id: int, update_id: int) -> None:
        raise ConnectionRefusedError(111, "Connect call failed")

    url = f"{webhook_platform.base_url}/webhook/citizen"
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    again = _update(chat, "/help")
    async with ClientSession() as http:
        with monkeypatch.context() as outage:
            outage.setattr(ledger, "claim", unreachable)
            async with http.post(url, json=_update(chat, "/help"), headers=headers) as response:
                assert response.status == 200
            async with http.post(url, json=again, headers=headers) as response:
                assert response.status == 503
        async with http.post(url, json=again, headers=headers) as response:
            assert response.status == 200
    assert [m["text"] for m in await chat.updates(count=0, wait=0)] == [
        text("en", "errors.unavailable"),
        help_reply("en", "citizen"),
    ]
