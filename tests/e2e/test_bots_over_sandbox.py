"""Every bot, end to end: aiogram's real HTTP session against the sandbox."""

import asyncio

import pytest
from aiohttp import ClientSession

from bots.registry import BOT_MODULES
from bots.sandbox.client import SandboxClient, buttons
from citybots.platform import Platform
from citybots.settings import BOT_NAMES
from presentation.i18n import LANGUAGES, text
from tests.factories import add_pcr, help_reply, make_iin, make_venue


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("bot", BOT_NAMES)
async def test_start_greets_with_the_menu_in_the_persons_language(
    sandbox: SandboxClient, bot: str, lang: str
) -> None:
    chat = await sandbox.chat(bot, first_name="Aigerim", language_code=lang)
    await chat.send("/start")
    reply = await chat.reply()
    assert reply["text"].startswith(text(lang, f"start.greeting.{bot}", name="Aigerim"))
    menu = BOT_MODULES[bot].PROFILE.menu
    assert buttons(reply) == [text(lang, key) for key in menu]
    assert "menu.help" in menu
    assert "menu.language" in menu


async def test_a_language_telegram_does_not_know_falls_back_to_the_default(
    sandbox: SandboxClient, platform: Platform
) -> None:
    chat = await sandbox.chat("citizen", language_code="de")
    await chat.send("/help")
    assert (await chat.reply())["text"] == help_reply(
        platform.settings.default_language, "citizen"
    )


async def test_language_choice_is_stored_and_used_from_then_on(
    sandbox: SandboxClient, platform: Platform
) -> None:
    chat = await sandbox.chat("staff", language_code="ru")
    await chat.send(text("ru", "menu.language"))
    prompt = await chat.reply()
    assert buttons(prompt) == ["Русский", "Қазақша", "English"]
    await chat.press("Қазақша")
    changed = await chat.reply()
    assert changed["text"] == text("kk", "language.changed")
    assert buttons(changed)[0] == text("kk", "staff_menu.venues")
    await chat.send("/help")
    assert (await chat.reply())["text"] == help_reply("kk", "staff")
    assert platform.pool is not None
    stored = await platform.pool.fetchval(
        "SELECT language FROM tg_users WHERE tg_user_id = $1", chat.user_id
    )
    assert stored == "kk"


async def test_text_no_flow_understands_gets_a_hint_and_the_menu(sandbox: SandboxClient) -> None:
    chat = await sandbox.chat("doctor", language_code="en")
    await chat.send("what is this?")
    reply = await chat.reply()
    assert reply["text"] == text("en", "fallback")
    assert text("en", "menu.help") in buttons(reply)


async def test_cancel_with_nothing_going_on_says_so(sandbox: SandboxClient) -> None:
    chat = await sandbox.chat("quarantine", language_code="kk")
    await chat.send("/cancel")
    assert (await chat.reply())["text"] == text("kk", "cancel.nothing")


async def test_a_429_from_the_api_is_waited_out_and_the_message_arrives_once(
    sandbox: SandboxClient, platform: Platform
) -> None:
    chat = await sandbox.chat("agent", language_code="en")
    retries = platform.metrics.api_retries.labels("agent")._value.get()
    await sandbox.inject_faults(count=1, status=429, retry_after=1, methods=["sendMessage"])
    await chat.send("/help")
    replies = await chat.replies(1, wait=15)
    await asyncio.sleep(0.5)
    replies += await chat.updates(count=0, wait=0)
    assert [r["text"] for r in replies] == [help_reply("en", "agent")]
    assert platform.metrics.api_retries.labels("agent")._value.get() == retries + 1


async def test_commands_are_registered_in_every_language(platform: Platform) -> None:
    assert platform.sandbox is not None
    bot = next(iter(platform.sandbox.bots_by_token.values()))
    for lang in LANGUAGES:
        described = {c["command"]: c["description"] for c in bot.commands[lang]}
        assert described["language"] == text(lang, "commands.language")


async def test_healthz_reports_postgres_redis_and_every_bot(platform: Platform) -> None:
    async with ClientSession() as http, http.get(f"{platform.base_url}/healthz") as response:
        assert response.status == 200
        report = await response.json()
    assert report["status"] == "ok"
    assert report["postgres"]["ok"]
    assert report["redis"]["ok"]
    assert set(report["bots"]) == set(BOT_NAMES)
    assert all(b["api"] == "sandbox" and b["mode"] == "polling" for b in report["bots"].values())


async def test_metrics_are_served_in_prometheus_format(
    platform: Platform, sandbox: SandboxClient
) -> None:
    chat = await sandbox.chat("citizen")
    await chat.send("/help")
    await chat.reply()
    async with ClientSession() as http, http.get(f"{platform.base_url}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
    handled = 'citybots_updates_total{bot="citizen",outcome="handled"}'
    for _ in range(200):  # the update is counted once its handler has returned, after the reply
        body = await _metrics(platform)
        if handled in body:
            break
        await asyncio.sleep(0.05)
    assert handled in body
    assert "# TYPE citybots_update_seconds histogram" in body


async def test_metrics_count_check_ins_job_runs_and_the_outbox_and_the_process(
    platform: Platform,
) -> None:
    assert platform.services is not None
    venue = await make_venue(platform.services)
    red = make_iin()
    await add_pcr(platform.services, red, "positive")
    await platform.services.visits.check_in(make_iin(), venue, entrance_id=None, via="qr")
    await platform.services.visits.check_in(red, venue, entrance_id=None, via="qr")
    for _ in range(200):  # the rollups job runs once at start, then every minute
        body = await _metrics(platform)
        if "citybots_job_runs_total{" in body and "citybots_outbox_backlog{" in body:
            break
        await asyncio.sleep(0.1)
    values = _samples(body)
    assert values['citybots_check_ins_total{outcome="admitted"}'] >= 1
    assert values['citybots_check_ins_total{outcome="refused"}'] >= 1
    assert values['citybots_job_runs_total{job="rollups",outcome="ok"}'] >= 1
    assert 'citybots_outbox_backlog{bot="citizen"}' in values
    assert values["process_resident_memory_bytes"] > 0  # the standard process_* metrics
    assert "process_cpu_seconds_total" in values
    assert "python_gc_objects_collected_total" in body


async def _metrics(platform: Platform) -> str:
    async with ClientSession() as http, http.get(f"{platform.base_url}/metrics") as response:
        assert response.status == 200
        return await response.text()


def _samples(body: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line and not line.startswith("#")
    }
